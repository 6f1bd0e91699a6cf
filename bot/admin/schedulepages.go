package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// Appointments by day and doctor, marked done or missed; each doctor's
// weekly hours, leave and extra sessions.

func (a *API) appointmentsPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	day, err := time.ParseInLocation("2006-01-02", c.DefaultQuery("day", a.now().In(flows.Shanghai).Format("2006-01-02")), flows.Shanghai)
	if err != nil {
		day = flows.StartOfDay(a.now())
	}
	doctor := formID(c.Query("doctor"))
	visits, err := a.DB.AppointmentsBetween(ctx, p.Scope, day, day.AddDate(0, 0, 1), doctor)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	doctors, _, err := a.DB.ListDoctors(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "appointments", gin.H{"Visits": visits, "Doctors": doctors, "Doctor": doctor, "Institutions": a.institutions(c),
		"Day": day.Format("2006-01-02"), "Prev": day.AddDate(0, 0, -1).Format("2006-01-02"), "Next": day.AddDate(0, 0, 1).Format("2006-01-02"),
		"Now": a.now()})
}

// markPage records a visit done or missed, as a doctor's 完成/未到 does.
func (a *API) markPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	back := "/admin/appointments?day=" + c.PostForm("day")
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingAppointment, id); err != nil {
		a.pageFail(c, err)
		return
	}
	status := c.PostForm("status")
	if status != "done" && status != "no_show" {
		refused(c, back, "未知操作。")
		return
	}
	appt, err := a.DB.Appointment(ctx, id)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	readings, err := flows.ParseReadings(c.PostForm("readings"))
	if err == nil {
		err = flows.MarkVisit(ctx, a.DB, a.Sealer, appt, status, readings, a.now())
	}
	var refusal *flows.Refusal
	switch {
	case errors.As(err, &refusal):
		refused(c, back, "没有登记："+refusal.Reason)
	case errors.Is(err, storage.ErrStatusChanged):
		refused(c, back, "这次预约已取消或已登记过。")
	case errors.Is(err, flows.ErrVisitAhead):
		refused(c, back, "就诊日还没到，不能登记。")
	case err != nil:
		a.pageFail(c, err)
	default:
		what := label(status)
		if !readings.Empty() {
			what += "，已记下读数" // not the values: the message travels in a cookie
		}
		done(c, back, fmt.Sprintf("已登记 %s %s：%s。", appt.ResidentName, appt.StartsAt.In(flows.Shanghai).Format("15:04"), what))
	}
}

var weekdays = []string{"周日", "周一", "周二", "周三", "周四", "周五", "周六"}

// weekdayName names a weekday the form gave as 0 (Sunday) to 6.
func weekdayName(form string) string {
	if d, err := strconv.Atoi(form); err == nil && d >= 0 && d <= 6 {
		return weekdays[d]
	}
	return form
}

func hhmm(minute int) string { return fmt.Sprintf("%02d:%02d", minute/60, minute%60) }

func (a *API) schedulePage(c *gin.Context) {
	a.showSchedule(c, http.StatusOK, "")
}

func (a *API) showSchedule(c *gin.Context, status int, problem string) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingDoctor, id); err != nil {
		a.pageFail(c, err)
		return
	}
	hours, err := a.DB.WeeklyHours(ctx, id)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	today := a.now().In(flows.Shanghai)
	exceptions, err := a.DB.Exceptions(ctx, id, today.Format("2006-01-02"), today.AddDate(0, 3, 0).Format("2006-01-02"))
	if err != nil {
		a.pageFail(c, err)
		return
	}
	type row struct {
		Day, From, To, Kind, Detail string
		Weekday                     int
	}
	var weekly, special []row
	for _, h := range hours {
		weekly = append(weekly, row{Day: weekdays[h.Weekday], Weekday: h.Weekday, From: hhmm(h.StartMinute), To: hhmm(h.EndMinute),
			Detail: fmt.Sprintf("每 %d 分钟一个号，每号 %d 人", h.SlotMinutes, h.Capacity)})
	}
	for _, x := range exceptions {
		r := row{Day: x.Day, From: hhmm(x.StartMinute), To: hhmm(x.EndMinute), Kind: "请假"}
		if x.Kind == "extra" {
			r.Kind, r.Detail = "加诊", fmt.Sprintf("每 %d 分钟一个号，每号 %d 人", x.SlotMinutes, x.Capacity)
		}
		special = append(special, r)
	}
	doctors, _, err := a.DB.ListDoctors(ctx, storage.Scope{Institution: p.Scope.Institution}, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	name := ""
	for _, d := range doctors {
		if d.ID == id {
			name = d.Name
		}
	}
	a.render(c, status, "schedule", gin.H{"Doctor": id, "Name": name, "Weekly": weekly, "Special": special,
		"Weekdays": weekdays, "Problem": problem})
}

// scheduleChange adds weekly hours, leave or an extra session from the
// schedule page, through the rules the API uses.
func (a *API) scheduleChange(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingDoctor, id); err != nil {
		a.pageFail(c, err)
		return
	}
	if c.PostForm("kind") == "remove" {
		a.removeHours(c, id)
		return
	}
	from, ok1 := minuteOf(c.PostForm("start"))
	to, ok2 := minuteOf(c.PostForm("end"))
	slot, _ := strconv.Atoi(c.DefaultPostForm("slot_minutes", "0"))
	capacity, _ := strconv.Atoi(c.DefaultPostForm("capacity", "0"))
	if !ok1 || !ok2 {
		a.showSchedule(c, http.StatusBadRequest, "开始和结束时间请写成 08:00 这样。")
		return
	}
	var err error
	switch kind := c.PostForm("kind"); kind {
	case "weekly":
		weekday, _ := strconv.Atoi(c.PostForm("weekday"))
		if weekday < 0 || weekday > 6 {
			a.showSchedule(c, http.StatusBadRequest, "请选择星期几。")
			return
		}
		err = flows.AddWeeklyHours(ctx, a.DB, storage.WeeklyHours{DoctorID: id, Weekday: weekday, StartMinute: from, EndMinute: to,
			SlotMinutes: slot, Capacity: capacity}, a.now())
	case "leave", "extra":
		if _, perr := time.Parse("2006-01-02", c.PostForm("day")); perr != nil {
			a.showSchedule(c, http.StatusBadRequest, "请选择日期。")
			return
		}
		err = flows.AddException(ctx, a.DB, storage.Exception{DoctorID: id, Day: c.PostForm("day"), Kind: kind, StartMinute: from,
			EndMinute: to, SlotMinutes: slot, Capacity: capacity}, a.now())
	default:
		a.showSchedule(c, http.StatusBadRequest, "未知操作。")
		return
	}
	var rule *flows.ErrSchedule
	if errors.As(err, &rule) {
		a.showSchedule(c, http.StatusBadRequest, "没有保存："+rule.Words)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	when := c.PostForm("day")
	if c.PostForm("kind") == "weekly" {
		when = weekdayName(c.PostForm("weekday"))
	}
	a.recordSchedule(c, id, "schedule."+c.PostForm("kind"), fmt.Sprintf("%s %s-%s", when, c.PostForm("start"), c.PostForm("end")))
	message := "已保存。"
	if c.PostForm("kind") == "leave" {
		message = "已登记请假：这段时间的号已关闭，已预约的居民会收到通知，可随时改约。"
	}
	done(c, "/admin/doctors/"+strconv.FormatInt(id, 10)+"/schedule", message)
}

// closurePage closes the whole institution for a day or part of one.
func (a *API) closurePage(c *gin.Context) {
	ctx := c.Request.Context()
	inst, ok := a.institutionFor(c)
	if !ok {
		return
	}
	from, ok1 := minuteOf(c.PostForm("start"))
	to, ok2 := minuteOf(c.PostForm("end"))
	back := "/admin/appointments?day=" + c.PostForm("day")
	if !ok1 || !ok2 {
		refused(c, back, "开始和结束时间请写成 08:00 这样。")
		return
	}
	n, err := flows.CloseInstitution(ctx, a.DB, inst, c.PostForm("day"), from, to, a.now())
	var rule *flows.ErrSchedule
	if errors.As(err, &rule) {
		refused(c, back, "没有保存："+rule.Words)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.record(c, inst, "schedule.closure", c.PostForm("day"), fmt.Sprintf("%s-%s，%d 位医生停诊", c.PostForm("start"), c.PostForm("end"), n))
	done(c, back, fmt.Sprintf("已为全机构 %d 位医生登记停诊；这段时间已预约的居民会收到通知，可随时改约。", n))
}

// removeHours takes a weekly session off a doctor's schedule.
func (a *API) removeHours(c *gin.Context, doctor int64) {
	weekday, err1 := strconv.Atoi(c.PostForm("weekday"))
	start, ok := minuteOf(c.PostForm("start"))
	back := "/admin/doctors/" + strconv.FormatInt(doctor, 10) + "/schedule"
	if err1 != nil || !ok {
		refused(c, back, "未知操作。")
		return
	}
	removed, booked, err := flows.RemoveWeeklyHours(c.Request.Context(), a.DB, doctor, weekday, start, a.now())
	if errors.Is(err, storage.ErrNotFound) {
		refused(c, back, "这段门诊时间已经删除了。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.recordSchedule(c, doctor, "schedule.remove", fmt.Sprintf("%s %s，撤下 %d 个空号，保留 %d 个已约号", weekdayName(c.PostForm("weekday")), c.PostForm("start"), removed, booked))
	message := fmt.Sprintf("已删除这段门诊时间，今后不再放号（撤下 %d 个空号）。", removed)
	if booked > 0 {
		message += fmt.Sprintf("已有预约的 %d 个号保留，请按时接诊或与居民联系改约。", booked)
	}
	done(c, back, message)
}
