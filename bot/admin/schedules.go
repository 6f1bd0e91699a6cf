package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// hoursJSON is a weekly session as admins write it.
type hoursJSON struct {
	Weekday     int    `json:"weekday"` // 0 Sunday … 6 Saturday
	Start       string `json:"start"`   // "08:00"
	End         string `json:"end"`     // "11:30"
	SlotMinutes int    `json:"slot_minutes"`
	Capacity    int    `json:"capacity"`
}

// exceptionJSON is leave or an extra session on one day.
type exceptionJSON struct {
	Day         string `json:"day"`  // "2026-12-01"
	Kind        string `json:"kind"` // leave, extra
	Start       string `json:"start"`
	End         string `json:"end"`
	SlotMinutes int    `json:"slot_minutes"`
	Capacity    int    `json:"capacity"`
}

func minuteOf(hhmm string) (int, bool) {
	h, m, ok := strings.Cut(hhmm, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 24 || mm < 0 || mm > 59 || hh*60+mm > 1440 {
		return 0, false
	}
	return hh*60 + mm, true
}

// window reads an HH:MM window; the rules it must follow are flows'.
func window(c *gin.Context, start, end string) (int, int, bool) {
	from, ok1 := minuteOf(start)
	to, ok2 := minuteOf(end)
	if !ok1 || !ok2 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "start and end must be HH:MM with end after start"})
		return 0, 0, false
	}
	return from, to, true
}

func (a *API) addWeeklyHours(c *gin.Context) {
	doctor, ok := a.id(c, storage.ThingDoctor)
	if !ok {
		return
	}
	var in hoursJSON
	if err := c.ShouldBindJSON(&in); err != nil || in.Weekday < 0 || in.Weekday > 6 {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"weekday": 0-6, "start": "08:00", "end": "11:30", "slot_minutes": 10, "capacity": 1}`})
		return
	}
	from, to, ok := window(c, in.Start, in.End)
	if !ok {
		return
	}
	if err := flows.AddWeeklyHours(c.Request.Context(), a.DB, storage.WeeklyHours{DoctorID: doctor, Weekday: in.Weekday,
		StartMinute: from, EndMinute: to, SlotMinutes: in.SlotMinutes, Capacity: in.Capacity}, a.now()); err != nil {
		a.fail(c, err)
		return
	}
	a.recordSchedule(c, doctor, "schedule.weekly", fmt.Sprintf("%s %s-%s", weekdays[in.Weekday], in.Start, in.End))
	c.JSON(http.StatusCreated, in)
}

func (a *API) addException(c *gin.Context) {
	doctor, ok := a.id(c, storage.ThingDoctor)
	if !ok {
		return
	}
	var in exceptionJSON
	if err := c.ShouldBindJSON(&in); err != nil || (in.Kind != "leave" && in.Kind != "extra") {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"day": "2026-12-01", "kind": "leave" or "extra", "start": "08:00", "end": "17:00"} (extra also slot_minutes and capacity)`})
		return
	}
	if _, err := time.Parse("2006-01-02", in.Day); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "day must be YYYY-MM-DD"})
		return
	}
	from, to, ok := window(c, in.Start, in.End)
	if !ok {
		return
	}
	if err := flows.AddException(c.Request.Context(), a.DB, storage.Exception{DoctorID: doctor, Day: in.Day, Kind: in.Kind,
		StartMinute: from, EndMinute: to, SlotMinutes: in.SlotMinutes, Capacity: in.Capacity}, a.now()); err != nil {
		a.fail(c, err)
		return
	}
	a.recordSchedule(c, doctor, "schedule."+in.Kind, fmt.Sprintf("%s %s-%s", in.Day, in.Start, in.End))
	c.JSON(http.StatusCreated, in)
}

// markVisit records a visit as done or missed, as a doctor's 完成/未到 does.
func (a *API) markVisit(c *gin.Context) {
	id, ok := a.id(c, storage.ThingAppointment)
	if !ok {
		return
	}
	var in struct {
		Status   string         `json:"status"`
		Readings flows.Readings `json:"readings"`
	}
	if c.ShouldBindJSON(&in) != nil || (in.Status != "done" && in.Status != "no_show") {
		c.JSON(http.StatusBadRequest, gin.H{"error": `body must be {"status": "done"} or {"status": "no_show"}, a done one with {"readings": {"systolic": 135, "diastolic": 85, "glucose": 6.8}} when measured`})
		return
	}
	appt, err := a.DB.Appointment(c.Request.Context(), id)
	if err != nil {
		a.fail(c, err)
		return
	}
	err = flows.MarkVisit(c.Request.Context(), a.DB, a.Sealer, appt, in.Status, in.Readings, a.now())
	if errors.Is(err, storage.ErrStatusChanged) {
		c.JSON(http.StatusConflict, gin.H{"error": "the appointment is not booked (cancelled or already marked)"})
		return
	}
	if errors.Is(err, flows.ErrVisitAhead) {
		c.JSON(http.StatusConflict, gin.H{"error": "the visit is on a day still to come"})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"appointment": id, "status": in.Status})
}

// fulfilment shows how much of a contract's service items it has received.
func (a *API) fulfilment(c *gin.Context) {
	if err := a.DB.Visible(c.Request.Context(), caller(c).Scope, storage.ThingContract, c.Param("number")); err != nil {
		a.fail(c, err)
		return
	}
	contract, err := a.DB.ContractByNumber(c.Request.Context(), c.Param("number"))
	if err != nil {
		a.fail(c, err)
		return
	}
	items, err := flows.Fulfilment(c.Request.Context(), a.DB, a.Sealer, contract, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	if items == nil {
		items = []flows.ItemFulfilment{}
	}
	c.JSON(http.StatusOK, gin.H{"contract": contract.Number, "status": contract.Status, "items": items})
}
