package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// The health calendar: the coming year's seasonal reminders as the caller's
// institution has them (city staff: the whole deployment's), and admins'
// changes to it.

// calendarYear is the coming year as the caller sees it.
func (a *API) calendarYear(c *gin.Context) (flows.Calendar, []flows.CalendarDay, error) {
	cal, err := flows.LoadCalendar(c.Request.Context(), a.DB)
	if err != nil {
		return cal, nil, err
	}
	days, err := cal.Year(caller(c).Scope.Institution, a.now())
	return cal, days, err
}

func (a *API) calendarPage(c *gin.Context) {
	a.showCalendar(c, http.StatusOK, calendarForm{}, "")
}

// calendarForm is an entry of the admins' own being added, kept on the
// page when it is refused.
type calendarForm struct {
	Name, Term, Text                 string
	Month, Day, UntilMonth, UntilDay int
	Groups                           []string
}

func (a *API) showCalendar(c *gin.Context, status int, f calendarForm, problem string) {
	_, days, err := a.calendarYear(c)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	groups, err := flows.PriorityGroups(c.Request.Context(), a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, status, "calendar", gin.H{"Days": days, "Groups": groups, "Terms": flows.SolarTerms(), "Form": f, "Problem": problem,
		"Everyone": caller(c).Scope.Institution == 0})
}

func formNumber(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// addCalendarPage adds an entry of the admins' own.
func (a *API) addCalendarPage(c *gin.Context) {
	f := calendarForm{Name: c.PostForm("name"), Term: c.PostForm("term"), Text: c.PostForm("text"),
		Month: formNumber(c.PostForm("month")), Day: formNumber(c.PostForm("day")),
		UntilMonth: formNumber(c.PostForm("until_month")), UntilDay: formNumber(c.PostForm("until_day")), Groups: c.PostFormArray("group")}
	if c.PostForm("kind") != "term" {
		f.Term = ""
	}
	p := caller(c)
	_, err := flows.SaveCalendarChange(c.Request.Context(), a.DB, p.Scope, flows.CalendarChange{Name: f.Name, Term: f.Term,
		Month: f.Month, Day: f.Day, UntilMonth: f.UntilMonth, UntilDay: f.UntilDay, Groups: f.Groups, Text: f.Text}, p.Name, a.now())
	a.finish(c, err, func(reason string) { a.showCalendar(c, http.StatusBadRequest, f, reason) }, "/admin/calendar", "已加入健康日历。")
}

// calendarEntryPage shows one entry with the form to change it.
func (a *API) calendarEntryPage(c *gin.Context) {
	a.showCalendarEntry(c, http.StatusOK, "")
}

func (a *API) showCalendarEntry(c *gin.Context, status int, problem string) {
	_, days, err := a.calendarYear(c)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	i := slices.IndexFunc(days, func(d flows.CalendarDay) bool { return d.Entry.Code == c.Param("code") })
	if i < 0 {
		a.pageFail(c, storage.ErrNotFound)
		return
	}
	a.render(c, status, "calendarentry", gin.H{"Day": days[i], "Problem": problem, "Everyone": caller(c).Scope.Institution == 0})
}

// editCalendarPage switches an entry off or on and rewrites its text.
func (a *API) editCalendarPage(c *gin.Context) {
	p := caller(c)
	_, err := flows.SaveCalendarChange(c.Request.Context(), a.DB, p.Scope, flows.CalendarChange{Code: c.Param("code"),
		Off: c.PostForm("send") != "on", Text: c.PostForm("text")}, p.Name, a.now())
	a.finish(c, err, a.calendarRefused(c), "/admin/calendar", "已保存。")
}

// resetCalendarPage puts an entry back as the calendar has it, or removes
// an entry of the admins' own.
func (a *API) resetCalendarPage(c *gin.Context) {
	p := caller(c)
	err := flows.DeleteCalendarChange(c.Request.Context(), a.DB, p.Scope, c.Param("code"), p.Name, a.now())
	a.finish(c, err, a.calendarRefused(c), "/admin/calendar", "已恢复。")
}

func (a *API) calendarRefused(c *gin.Context) func(string) {
	return func(reason string) { a.showCalendarEntry(c, http.StatusBadRequest, reason) }
}

// calendarJSON is an entry of the coming year for scripts.
type calendarJSON struct {
	Code   string    `json:"code"`
	Name   string    `json:"name"`
	From   time.Time `json:"from"`
	Until  time.Time `json:"until"` // the first moment after its window
	For    []string  `json:"groups"`
	Text   string    `json:"text"`
	Off    bool      `json:"off"`
	Edited bool      `json:"edited"`
	Added  bool      `json:"added"`
}

// calendar answers the coming year: GET /admin/api/calendar.
func (a *API) calendar(c *gin.Context) {
	_, days, err := a.calendarYear(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make([]calendarJSON, len(days))
	for i, d := range days {
		out[i] = calendarJSON{Code: d.Entry.Code, Name: d.Entry.Name, From: d.From, Until: d.To, For: append([]string{}, d.Entry.Groups...),
			Text: d.Entry.Text, Off: d.Off, Edited: d.Edited, Added: d.Added}
	}
	c.JSON(http.StatusOK, gin.H{"entries": out})
}

// calendarRequest is the JSON body of the calendar's writes.
type calendarRequest struct {
	Off        bool     `json:"off"`
	Text       string   `json:"text"`
	Name       string   `json:"name"`
	Term       string   `json:"term"`
	Month      int      `json:"month"`
	Day        int      `json:"day"`
	UntilMonth int      `json:"until_month"`
	UntilDay   int      `json:"until_day"`
	Groups     []string `json:"groups"`
}

func readCalendarRequest(c *gin.Context) (calendarRequest, bool) {
	var r calendarRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "the body must be JSON with off and text, or to add one: name, term or month and day, until_month, until_day, groups and text: " + err.Error()})
		return r, false
	}
	return r, true
}

// addCalendar adds an entry: POST /admin/api/calendar answers {"code"}.
func (a *API) addCalendar(c *gin.Context) {
	r, ok := readCalendarRequest(c)
	if !ok {
		return
	}
	p := caller(c)
	code, err := flows.SaveCalendarChange(c.Request.Context(), a.DB, p.Scope, flows.CalendarChange{Name: r.Name, Term: r.Term,
		Month: r.Month, Day: r.Day, UntilMonth: r.UntilMonth, UntilDay: r.UntilDay, Groups: r.Groups, Text: r.Text}, p.Name, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"code": code})
}

// editCalendar switches an entry off or on and rewrites its text ("" keeps
// the calendar's): POST /admin/api/calendar/CODE {"off", "text"}.
func (a *API) editCalendar(c *gin.Context) {
	r, ok := readCalendarRequest(c)
	if !ok {
		return
	}
	p := caller(c)
	code, err := flows.SaveCalendarChange(c.Request.Context(), a.DB, p.Scope, flows.CalendarChange{Code: c.Param("code"), Off: r.Off, Text: r.Text},
		p.Name, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"code": code, "off": r.Off})
}

// resetCalendar puts an entry back or removes an added one.
func (a *API) resetCalendar(c *gin.Context) {
	p := caller(c)
	if err := flows.DeleteCalendarChange(c.Request.Context(), a.DB, p.Scope, c.Param("code"), p.Name, a.now()); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
