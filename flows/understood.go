package flows

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// understood answers a message no command, word or conversation took: what
// Understand reads in it (understand.go), or, when nothing, the help text.
func (e *Engine) understood(ctx context.Context, st *State, said string, in Inbound) ([]string, error) {
	m := Understand(said)
	// The intent and the phrase come from phrases.yaml: they say why, and
	// hold nothing the resident wrote.
	e.log().Debug("message understood", "intent", m.Intent, "phrase", m.Phrase)
	switch m.Intent {
	case "":
		return say("not_understood", nil)
	case intentUrgent, intentCrisis, intentHealth, intentContact, intentInfoChange, intentComplaint, intentTrust:
		c, err := e.careContact(ctx, in.OpenID)
		if err != nil {
			return nil, err
		}
		return say(m.Intent+"_answer", c)
	case intentGreeting:
		return say("greeting", nil)
	case intentThanks:
		return say("thanks", nil)
	case intentAck:
		return say("ack_answer", nil)
	case intentCancelBooking:
		return e.appointmentAsked(ctx, st, in, false, nil)
	case intentReschedule: // 把预约改到后天下午: the day and half are answers ahead
		var ahead map[string]string
		if d := bookingAsked(said, in); d != nil {
			delete(d.Ahead, "kind")
			ahead = d.Ahead
		}
		return e.appointmentAsked(ctx, st, in, true, ahead)
	case intentSign:
		if whoIn(said) == "family" { // 给我老伴也签一个: the family member's signing
			return e.enter(ctx, st, signing.name, in, &signingData{Ahead: map[string]string{"who": "2"}})
		}
		return e.route(ctx, st, m.Says, in)
	case intentBook:
		if d := bookingAsked(said, in); d != nil {
			return e.enter(ctx, st, booking.name, in, d)
		}
		return e.enter(ctx, st, booking.name, in, nil)
	}
	if m.Says == "" || Understand(m.Says).Says != m.Says {
		return say("not_understood", nil) // phrases.yaml names a word nothing answers; its test says which
	}
	return e.route(ctx, st, m.Says, in)
}

// careContact is who a resident may call: the family doctor and the phone
// of the institution that signed them, or, for someone not signed, the
// institutions' phones.
type careContact struct {
	Doctor, Team, Phone string
}

func (e *Engine) careContact(ctx context.Context, openID string) (careContact, error) {
	cs, err := e.DB.ContractsManagedBy(ctx, openID)
	if err != nil {
		return careContact{}, err
	}
	// The oldest contract: the user's own comes before family signed later.
	slices.SortFunc(cs, func(a, b storage.ContractView) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range cs {
		if c.Status != storage.ContractActive {
			continue
		}
		phone, err := e.teamPhone(ctx, c.TeamID)
		if err != nil {
			return careContact{}, err
		}
		return careContact{Doctor: c.DoctorName, Team: c.TeamName, Phone: phone}, nil
	}
	who, err := Processor(ctx, e.DB)
	return careContact{Phone: who.Phones}, err
}

// teamPhone is the phone of the institution a team belongs to.
func (e *Engine) teamPhone(ctx context.Context, teamID int64) (string, error) {
	return TeamPhone(ctx, e.DB, teamID)
}

// TeamPhone is the phone of the institution a team belongs to, "" when it
// has none recorded.
func TeamPhone(ctx context.Context, db *storage.DB, teamID int64) (string, error) {
	team, err := db.TeamByID(ctx, teamID)
	if err != nil {
		return "", err
	}
	insts, err := db.Institutions(ctx)
	if err != nil {
		return "", err
	}
	for _, in := range insts {
		if in.ID == team.InstitutionID {
			return in.Phone, nil
		}
	}
	return "", nil
}

// appointmentAsked answers "帮我取消预约" and "改个时间": with one appointment
// listed, it is the one (and 取消 still asks before cancelling); with more,
// the list, which says how to pick.
func (e *Engine) appointmentAsked(ctx context.Context, st *State, in Inbound, moving bool, ahead map[string]string) ([]string, error) {
	list, err := e.DB.UpcomingManagedBy(ctx, in.OpenID, in.At)
	if err != nil {
		return nil, err
	}
	if len(list) == 1 {
		return e.actOnAppointment(ctx, st, in, "1", moving, ahead)
	}
	return e.myAppointments(ctx, in)
}

// bookingAsked is what a sentence already says of the booking it asks for
// ("我想预约明天上午看病"): the kind of visit, the day and the half of the
// day, each taken as the answer to its question when the booking gets there.
func bookingAsked(said string, in Inbound) *bookingData {
	d := &bookingData{Ahead: map[string]string{}}
	c := compact(said)
	for _, k := range bookingKindWords {
		if slices.ContainsFunc(k.words, func(w string) bool { return strings.Contains(c, w) }) {
			d.Ahead["kind"] = kindName(k.code)
			break
		}
	}
	if day, ok := parseDay(said, in.At); ok {
		d.Ahead["date"] = day.Format("1月2日")
	}
	if half := parseHalf(said); half != "" {
		d.Ahead["half"] = halfWords[half]
	}
	if len(d.Ahead) == 0 {
		return nil
	}
	return d
}

// bookingKindWords name each kind of visit in a sentence, most specific first.
var bookingKindWords = []struct {
	code  string
	words []string
}{
	{"referral", []string{"转诊", "转院", "转到", "大医院", "上级医院", "专家", "县医院", "市医院"}},
	{"home", []string{"上门", "到家", "来家", "家里来", "入户", "腿脚不好", "走不动", "行动不便", "去不了卫生院"}},
	{"checkup", []string{"体检", "查体", "检查身体", "身体检查"}},
	{"followup", []string{"随访", "复查"}},
	{"clinic", []string{"看病", "门诊", "看医生", "看个病", "开药", "拿药", "配药", "药快吃完", "药吃完", "药快没"}},
}
