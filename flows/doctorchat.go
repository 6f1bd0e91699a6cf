package flows

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// A bound doctor's words in chat, besides 绑定, 确认 NUMBER and 拒绝 (doctors.go)
// and the day's visits (visits.go): 帮助 lists them, 确认 alone lists what
// waits for an answer (and 确认 N answers its N-th line), 明日预约 or 周三预约
// shows that day's visits, 我的居民 counts the doctor's residents by group.
// Numbers and days are read as residents write them.

// listed is a line number as people write it: 1, 一, 第一个.
const listed = `第?[0-9一二两三四五六七八九十]+[个号项]?`

var (
	confirmNthCommand = regexp.MustCompile(`^确认\s*(` + listed + `)$`)
	declineNthCommand = regexp.MustCompile(`^拒绝\s*(` + listed + `)(?:\s+(.*))?$`)
	agendaCommand     = regexp.MustCompile(`^(.+?)的?(?:预约|门诊|安排)$`)
	// A doctor who types a contract number's digits without its QY means
	// the number (ten to twelve digits); four or more that are not one
	// are no line of a list either. From anyone else they are other words
	// (a phone number in a signing, a member's code).
	numberDigits = regexp.MustCompile(`^(确认|拒绝)\s*(\d{4,})(.*)$`)
)

// doctorChat answers a bound doctor; ok is false for anything else, and for
// anyone who is not a bound doctor (the same words mean other things to
// residents: 明天预约 books a visit).
func (e *Engine) doctorChat(ctx context.Context, st *State, said string, in Inbound) ([]string, bool, error) {
	alone := st.Flow == "" // 帮助 and 确认 alone belong to an open conversation
	m, n := agendaCommand.FindStringSubmatch(said), confirmNthCommand.FindStringSubmatch(said)
	d := declineNthCommand.FindStringSubmatch(said)
	if m == nil && dayWordPattern.MatchString(said) && slices.ContainsFunc([]string{"几个", "多少人", "谁约", "有谁", "安排", "约了"},
		func(w string) bool { return strings.Contains(said, w) }) {
		m = []string{said, said} // 帮我看看明天有几个人约了; not 帮我约明天上午, the doctor's own booking
	}
	if m != nil {
		if _, ok := parseDay(m[1], in.At); !ok {
			m = nil // 我的预约, 取消预约: not a day's visits
		}
	}
	digits := numberDigits.FindStringSubmatch(said)
	if digits != nil {
		n, d = nil, nil // a number, not a line
	}
	wanted := m != nil || n != nil || d != nil || digits != nil || said == "我的居民" || alone && (said == "帮助" || said == "确认")
	if !wanted {
		return nil, false, nil
	}
	if said == "帮助" { // words only: the names kept in memory answer it
		name, ok, err := e.DB.BoundDoctorName(ctx, in.OpenID)
		if err != nil {
			return nil, true, err
		}
		if !ok { // a resident: their own help
			return nil, false, nil
		}
		replies, err := say("doctor_help", name)
		return replies, true, err
	}
	doctor, err := e.DB.DoctorByOpenID(ctx, in.OpenID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	var replies []string
	switch {
	case said == "确认":
		replies, err = e.doctorWaiting(ctx, st, doctor)
	case said == "我的居民":
		replies, err = e.doctorPanel(ctx, doctor, in)
	case digits != nil:
		if len(digits[2]) > 12 || len(digits[2]) < 10 {
			replies, err = say("doctor_number_format", nil)
			break
		}
		replies, _, err = e.doctorCommand(ctx, nil, digits[1]+" QY"+digits[2]+digits[3], in)
	case n != nil || d != nil:
		return e.answerNth(ctx, st, n, d, in)
	default:
		day, _ := parseDay(m[1], in.At)
		from := StartOfDay(day)
		var agenda []storage.AppointmentView
		if agenda, err = e.DB.DoctorAgenda(ctx, doctor.ID, from, from.AddDate(0, 0, 1)); err != nil {
			return nil, true, err
		}
		if from.Equal(StartOfDay(in.At)) {
			replies, err = say("doctor_agenda", agendaLines(agenda))
		} else {
			replies, err = say("doctor_day_agenda", map[string]any{"Day": dayLabel(day.Format("2006-01-02")), "Lines": agendaLines(agenda)})
		}
	}
	return replies, true, err
}

// waitingLine is one request in 确认's list.
type waitingLine struct {
	Number, Name, Community, Change string
}

func (e *Engine) doctorWaiting(ctx context.Context, st *State, doctor storage.Doctor) ([]string, error) {
	list, total, err := e.DB.DoctorWaiting(ctx, doctor.ID)
	if err != nil {
		return nil, err
	}
	lines := make([]waitingLine, len(list))
	st.Listed = nil
	for i, c := range list {
		st.Listed = append(st.Listed, c.Number)
		lines[i] = waitingLine{Number: c.Number, Name: c.ResidentName, Community: c.CommunityName}
		if c.ChangeDoctorID.Valid && c.ChangeDoctorID.Int64 == doctor.ID {
			lines[i].Change = c.TeamName
		}
	}
	replies, shown, err := waitingReply(lines, total)
	st.Listed = st.Listed[:shown] // 确认 N answers only a line the doctor saw
	return replies, err
}

// waitingReply lists as many of lines as fit in one reply (WeChat drops a
// longer one: long names of communities and teams pass it before 20
// lines), saying how many more wait of total; shown is how many it lists.
func waitingReply(lines []waitingLine, total int) (replies []string, shown int, err error) {
	for {
		// The count is a query of its own: an answer in between may leave it short.
		replies, err = say("doctor_waiting", map[string]any{"Lines": lines, "More": max(total-len(lines), 0)})
		if err != nil || len(lines) <= 1 || len(strings.Join(replies, "\n\n")) <= maxReplyBytes {
			return replies, len(lines), err
		}
		lines = lines[:len(lines)-1]
	}
}

// answerNth confirms or declines the N-th line of the list 确认 last
// showed (an answered line keeps its number until 确认 lists again).
func (e *Engine) answerNth(ctx context.Context, st *State, confirm, decline []string, in Inbound) ([]string, bool, error) {
	list := st.Listed
	nth, reason := "", ""
	if confirm != nil {
		nth = confirm[1]
	} else {
		nth, reason = decline[1], strings.TrimSpace(decline[2])
	}
	i, ok := choice(nth, len(list))
	if !ok {
		replies, err := say("doctor_waiting_not_listed", asNumber(nth))
		return replies, true, err
	}
	number := list[i-1]
	if confirm != nil {
		replies, _, err := e.doctorCommand(ctx, nil, "确认 "+number, in)
		return replies, true, err
	}
	replies, _, err := e.doctorCommand(ctx, nil, "拒绝 "+number+" "+reason, in)
	return replies, true, err
}

// doctorPanel counts the doctor's residents under active contracts, by
// priority group, the groups in the programme's order.
func (e *Engine) doctorPanel(ctx context.Context, doctor storage.Doctor, in Inbound) ([]string, error) {
	settings, err := Settings(ctx, e.DB)
	if err != nil {
		return nil, err
	}
	panel, err := e.DB.DoctorPanelOf(ctx, doctor.ID, groupRules(e.Sealer, in.At.In(Shanghai)))
	if err != nil {
		return nil, err
	}
	type line struct {
		Name  string
		Count int
	}
	var lines []line
	for _, code := range settings.PriorityGroups {
		if n := panel.Groups[code]; n > 0 {
			term, _ := findTerm(code)
			lines = append(lines, line{term.Name, n})
		}
	}
	return say("doctor_panel", map[string]any{"Doctor": doctor.Name, "Active": panel.Active, "Groups": lines})
}
