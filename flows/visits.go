package flows

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// A doctor sees the day's visits with 今日预约 and marks each 完成 N (done)
// or 未到 N (missed), N being its line. A done visit asks the resident for
// a score from 1 to 5 and, in the next message, an optional comment; each
// visit is scored once.
var (
	doneCommand   = regexp.MustCompile(`^完成\s*(` + listed + `)\s*(.*)$`)
	missedCommand = regexp.MustCompile(`^未到\s*(` + listed + `)$`)
)

func dayBounds(at time.Time) (time.Time, time.Time) {
	start := StartOfDay(at)
	return start, start.AddDate(0, 0, 1)
}

// visitCommand answers a doctor's 今日预约, 完成 N and 未到 N.
func (e *Engine) visitCommand(ctx context.Context, _ *State, said string, in Inbound) ([]string, bool, error) {
	m := doneCommand.FindStringSubmatch(said)
	status, readings := "done", Readings{}
	if m == nil {
		m, status = missedCommand.FindStringSubmatch(said), "no_show"
	} else {
		var err error
		var refusal *Refusal
		if readings, err = ParseReadings(m[2]); errors.As(err, &refusal) {
			replies, err := say("visit_readings_unclear", refusal.Reason)
			return replies, true, err
		}
	}
	if m == nil && said != "今日预约" {
		return nil, false, nil
	}
	doctor, err := e.DB.DoctorByOpenID(ctx, in.OpenID)
	if errors.Is(err, storage.ErrNotFound) {
		replies, err := say("doctor_not_bound", nil)
		return replies, true, err
	}
	if err != nil {
		return nil, true, err
	}
	from, to := dayBounds(in.At)
	agenda, err := e.DB.DoctorAgenda(ctx, doctor.ID, from, to)
	if err != nil {
		return nil, true, err
	}
	if m == nil {
		replies, err := say("doctor_agenda", agendaLines(agenda))
		return replies, true, err
	}
	n, ok := choice(m[1], len(agenda))
	if !ok {
		replies, err := say("visit_not_listed", asNumber(m[1]))
		return replies, true, err
	}
	a := agenda[n-1]
	err = MarkVisit(ctx, e.DB, e.Sealer, a, status, readings, in.At)
	if errors.Is(err, storage.ErrStatusChanged) {
		replies, err := say("visit_already_marked", n)
		return replies, true, err
	}
	if err != nil {
		return nil, true, err
	}
	replies, err := say("visit_marked", map[string]any{"N": n, "Name": a.ResidentName, "Done": status == "done", "Readings": !readings.Empty()})
	return replies, true, err
}

// ErrVisitAhead: a visit of a day still to come cannot be marked done or
// missed.
var ErrVisitAhead = errors.New("the visit is on a day still to come")

// MarkVisit records a booked visit as done or no_show, a done one with what
// the doctor measured (sealed); a done one asks the resident for a score.
// Doctors do it in chat, staff in the console and through the API.
func MarkVisit(ctx context.Context, db *storage.DB, s *storage.Sealer, a storage.AppointmentView, status string, r Readings, at time.Time) error {
	if status != "done" && status != "no_show" {
		return fmt.Errorf("flows.MarkVisit: status %q is not done or no_show", status)
	}
	if err := r.Check(); err != nil {
		return err
	}
	if status != "done" && !r.Empty() {
		return &Refusal{Reason: "未到的就诊没有读数"}
	}
	sealed, err := sealReadings(s, r)
	if err != nil {
		return err
	}
	if StartOfDay(a.StartsAt).After(StartOfDay(at)) {
		return ErrVisitAhead
	}
	var pushes []storage.Push
	if status == "done" {
		pushes = []storage.Push{SatisfactionSurvey{AppointmentID: a.ID, OpenID: a.ManagerOpenID, Doctor: a.DoctorName,
			VisitKind: a.Kind, At: a.StartsAt}.Push()}
	}
	return db.MarkVisit(ctx, a.ID, status, sealed, at, pushes)
}

type agendaLine struct{ Time, Kind, Name, Status string }

func agendaLines(agenda []storage.AppointmentView) []agendaLine {
	var lines []agendaLine
	for _, a := range agenda {
		lines = append(lines, agendaLine{Time: slotLabel(a.StartsAt, a.EndsAt), Kind: kindName(a.Kind), Name: a.ResidentName,
			Status: map[string]string{"done": "已完成", "no_show": "未到"}[a.Status]})
	}
	return lines
}

// agendaHour and agendaMinute: each bound doctor gets the day's visits then.
const agendaHour, agendaMinute = 7, 30

// AgendaTime is when in the day (Asia/Shanghai) the agendas go.
const AgendaTime = agendaHour*time.Hour + agendaMinute*time.Minute

// AgendaPushes are the day's agendas for bound doctors with visits, once it
// is 07:30 in Asia/Shanghai; nil before (and a non-nil, maybe empty, list
// from then on). Keyed by doctor and day, so
// however often and on however many instances this runs, each doctor gets
// one agenda a day.
func AgendaPushes(ctx context.Context, db *storage.DB, now time.Time) ([]storage.Push, error) {
	local := now.In(Shanghai)
	if local.Hour()*60+local.Minute() < agendaHour*60+agendaMinute {
		return nil, nil
	}
	from, to := dayBounds(now)
	entries, err := db.Agendas(ctx, from, to)
	if err != nil {
		return nil, err
	}
	pushes := []storage.Push{}
	for i := 0; i < len(entries); {
		first := entries[i]
		n := 0
		for i < len(entries) && entries[i].DoctorID == first.DoctorID {
			i, n = i+1, n+1
		}
		pushes = append(pushes, DoctorAgenda{DoctorID: first.DoctorID, OpenID: first.OpenID, Day: now, Count: n,
			First: first.StartsAt}.Push())
	}
	return pushes, nil
}

// ItemFulfilment is how much of one service item a contract has received
// this term: completed visits of the item's kind against its yearly count.
type ItemFulfilment struct {
	Package  string `json:"package"`
	Item     string `json:"item"`
	Required int    `json:"required"`
	Done     int    `json:"done"`
}

// Fulfilment (履约) of an active contract's service items that visits fulfil
// and that are due for this resident (a chronic follow-up for a chronic
// patient, the 65+ check-up for the 65+). A visit counts toward every item
// of its kind (the basic package's follow-ups and a chronic package's are
// the same visits), capped at the item's count.
func Fulfilment(ctx context.Context, db *storage.DB, s *storage.Sealer, c storage.ContractView, now time.Time) ([]ItemFulfilment, error) {
	if !c.TermEnd.Valid {
		return nil, nil // not started
	}
	end, err := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	if err != nil {
		return nil, fmt.Errorf("flows.Fulfilment: term end %q: %w", c.TermEnd.String, err)
	}
	start := end.AddDate(0, -c.TermMonths, 1)
	done, err := db.DoneVisits(ctx, c.ID, start)
	if err != nil {
		return nil, err
	}
	groups, err := ResidentGroups(s, c.Groups, c.BirthDate, now)
	if err != nil {
		return nil, err
	}
	cat, err := db.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	var out []ItemFulfilment
	for _, cp := range c.Packages {
		p, ok := cat.Package(cp.Code)
		if !ok {
			continue
		}
		for _, it := range p.Items {
			if it.VisitKind == "" || it.PerYear == 0 || !it.DueFor(groups) {
				continue
			}
			out = append(out, ItemFulfilment{Package: cp.Name, Item: it.Name, Required: it.PerYear, Done: min(done[it.VisitKind], it.PerYear)})
		}
	}
	return out, nil
}
