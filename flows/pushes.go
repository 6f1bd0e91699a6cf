package flows

import (
	"cmp"
	"fmt"
	"strconv"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Push kinds: what the bot says unprompted. Each has a WeChat template
// configured in production (JIAYI_WECHAT_TEMPLATES) and one in the sandbox,
// one typed constructor below, and its words in templates/messages/_pushes.txt
// (push_KIND) for customer-service messages and for people reading the
// sandbox.
const (
	PushSignRequest   = "sign_request"   // to the doctor: a resident asks to sign
	PushSignConfirmed = "sign_confirmed" // to the resident: the doctor confirmed
	PushSignDeclined  = "sign_declined"  // to the resident: the doctor declined, with the reason
	PushSignReminder  = "sign_reminder"  // to the doctor: a sign request waits for an answer
	PushSignWaiting   = "sign_waiting"   // to the resident: the request still waits; the centre follows it up

	PushContractCancelled = "contract_cancelled" // to the doctor: the resident ended the contract
	PushContractRenewed   = "contract_renewed"   // to the doctor: the resident renewed

	PushTeamChangeConfirmed = "team_change_confirmed" // to the resident: the new team's doctor took the contract (改签)
	PushTeamChangeDeclined  = "team_change_declined"  // to the resident: the new team's doctor declined; nothing changed
	PushTeamChanged         = "team_changed"          // to the former doctor: the resident moved to another team
	PushTeamHandover        = "team_handover"         // to the resident: the centre handed their team's residents to another team
	PushHandoverReceived    = "handover_received"     // to the new team's doctor: residents handed over to their team

	PushReferralRequest     = "referral_request"      // to the doctor: a resident asks to be referred
	PushDataRequestAnswered = "data_request_answered" // to the resident: staff answered their deletion request
	PushMemberConfirmed     = "member_confirmed"      // to the one who signed a family member: the member confirmed
	PushBookingCreated      = "booking_created"       // to the doctor: a new appointment
	PushBookingChanged      = "booking_changed"       // to the doctor: an appointment moved
	PushBookingCancelled    = "booking_cancelled"     // to the doctor: an appointment cancelled
	PushBookingDoctorLeave  = "booking_doctor_leave"  // to the resident: the doctor is on leave at the booked time
	PushAppointmentReminder = "appointment_reminder"  // to the resident: the day before and 2 hours before
	PushSatisfaction        = "satisfaction_survey"   // to the resident after a visit: a score 1-5
	PushDoctorAgenda        = "doctor_agenda"         // to the doctor at 07:30: the day's visits
	PushSeasonal            = "seasonal_reminder"     // to residents: the seasonal calendar
	PushPersonal            = "personal_reminder"     // to residents: follow-ups, check-ups, renewal
	PushLateReply           = "late_reply"            // a reply that missed WeChat's 5 seconds and its first delivery
)

// Reminder kinds residents can turn off in 提醒设置.
var (
	SeasonalKinds = []string{PushSeasonal}
	PersonalKinds = []string{PushAppointmentReminder, PushPersonal}
)

// PushKinds lists every kind that may have a WeChat template, for
// configuration checks and the sandbox. A late reply is not among them: it
// answers a message, so it always goes as a customer-service message. Nor
// is a seasonal tip: WeChat forbids marketing in template messages, so tips
// go as customer-service messages or in the digest (digest.go).
var PushKinds = []string{PushSignRequest, PushSignConfirmed, PushSignDeclined, PushSignReminder, PushSignWaiting,
	PushContractCancelled, PushContractRenewed,
	PushTeamChangeConfirmed, PushTeamChangeDeclined, PushTeamChanged, PushTeamHandover, PushHandoverReceived,
	PushReferralRequest, PushBookingCreated, PushBookingChanged, PushBookingCancelled, PushBookingDoctorLeave, PushAppointmentReminder,
	PushSatisfaction, PushDoctorAgenda, PushPersonal, PushDataRequestAnswered, PushMemberConfirmed}

// Priorities under WeChat's daily quotas: transactional first.
const (
	PriorityTransactional = 0
	PriorityAppointment   = 1
	PriorityPersonal      = 2
	PrioritySeasonal      = 3
	// PriorityHeld is a seasonal tip waiting for the digest (digest.go):
	// no dispatcher claims it; the digest job takes it or gives it back.
	PriorityHeld = 9
)

// PushText is a push in words, for a customer-service message where no
// template is configured (and for people reading the sandbox).
func PushText(kind string, fields map[string]string) (string, error) {
	data := map[string]string{}
	for k, v := range fields {
		data[k] = v
	}
	return templates.Message("push_"+kind, data)
}

// PushTitle is the title a template message of this kind shows above its
// fields, as the account's template in WeChat names it; the simulator
// draws template cards with it.
func PushTitle(kind string) (string, error) { return templates.Message("push_title_"+kind, nil) }

// DoctorRecipient addresses a push to a doctor by record, resolved to their
// WeChat when sent: a doctor not yet bound gets it once they bind.
func DoctorRecipient(doctorID int64) string { return "doctor:" + strconv.FormatInt(doctorID, 10) }

// clock is how a push names a moment: Asia/Shanghai, to the minute.
func clock(t time.Time) string { return t.In(Shanghai).Format("2006-01-02 15:04") }

// SignRequest asks a team's doctor to confirm a resident: a new signing, or a
// contract moving to the team (改签). It names no package: a package can
// name a condition (高血压, 严重精神障碍), and a template message is read
// on a lock screen; the doctor sees the packages in the console.
type SignRequest struct {
	Key       string
	DoctorID  int64
	Number    string
	Resident  string
	Community string
	At        time.Time
}

func (p SignRequest) Push() storage.Push {
	return storage.Push{Key: p.Key, Kind: PushSignRequest, Recipient: DoctorRecipient(p.DoctorID), Priority: PriorityTransactional,
		Fields: map[string]string{"number": p.Number, "resident": p.Resident, "community": p.Community, "time": clock(p.At)}}
}

// SignFollowUp is a sign request left unanswered: after RemindAfter the
// doctor is reminded; after EscalateAfter the resident is told it still
// waits and that the centre follows it up (the console lists it as overdue
// for the institution's staff).
type SignFollowUp struct {
	Number   string
	DoctorID int64
	Doctor   string
	OpenID   string // the resident's manager; "" for a resident without WeChat
	Resident string
	Days     int
	Phone    string // the institution's
}

// Reminder is the doctor's reminder, once per request.
func (p SignFollowUp) Reminder() storage.Push {
	return storage.Push{Key: storage.SignFollowUpKeys(p.Number)[0], Kind: PushSignReminder, Recipient: DoctorRecipient(p.DoctorID),
		Priority: PriorityPersonal, // not urgent: it waits out quiet hours
		Fields:   map[string]string{"number": p.Number, "resident": p.Resident, "days": strconv.Itoa(p.Days)}}
}

// Waiting tells the resident, once per request.
func (p SignFollowUp) Waiting() storage.Push {
	return storage.Push{Key: storage.SignFollowUpKeys(p.Number)[1], Kind: PushSignWaiting, Recipient: p.OpenID,
		Priority: PriorityPersonal,
		Fields: map[string]string{"number": p.Number, "doctor": p.Doctor,
			"phone": cmp.Or(p.Phone, "卫生院（社区卫生服务中心）")}}
}

// TeamHandover tells a resident's manager that the centre handed their
// team's residents to another team, and the new team's doctor how many came.
type TeamHandover struct {
	Key      string // the handover's: one push per contract under it
	From, To string // team names
	Doctor   string // the new team's doctor
	DoctorID int64
	At       time.Time
}

// ToResident is the resident's notice for one contract.
func (h TeamHandover) ToResident(openID, number, resident string) storage.Push {
	return storage.Push{Key: h.Key + ":" + number, Kind: PushTeamHandover, Recipient: openID, Priority: PriorityTransactional,
		Fields: map[string]string{"number": number, "resident": resident, "from": h.From, "to": h.To, "doctor": h.Doctor}}
}

// ToDoctor is the new team's doctor's notice.
func (h TeamHandover) ToDoctor(contracts, visits int) storage.Push {
	return storage.Push{Key: h.Key + ":doctor", Kind: PushHandoverReceived, Recipient: DoctorRecipient(h.DoctorID),
		Priority: PriorityTransactional, Fields: map[string]string{"from": h.From, "contracts": strconv.Itoa(contracts),
			"visits": strconv.Itoa(visits), "time": clock(h.At)}}
}

// SignAnswer tells the resident's manager what the doctor answered: confirmed
// when Reason is empty, declined with it otherwise.
type SignAnswer struct {
	OpenID   string
	Number   string
	Doctor   string
	Resident string
	TermEnd  string // confirmed: the term's last day
	Reason   string // declined: why
	Phone    string // declined: the institution's, to ask about it
}

func (p SignAnswer) Push() storage.Push {
	fields := map[string]string{"number": p.Number, "doctor": p.Doctor, "resident": p.Resident}
	kind, key := PushSignConfirmed, "contract:"+p.Number+":confirmed"
	if p.Reason != "" {
		kind, key, fields["reason"] = PushSignDeclined, "contract:"+p.Number+":declined", p.Reason
		if p.Phone != "" {
			fields["phone"] = p.Phone
		}
	} else {
		fields["term_end"] = p.TermEnd
	}
	return storage.Push{Key: key, Kind: kind, Recipient: p.OpenID, Priority: PriorityTransactional, Fields: fields}
}

// ContractEnded tells the doctor a resident cancelled (解约, with the reason).
type ContractEnded struct {
	Key      string
	DoctorID int64
	Number   string
	Resident string
	Reason   string
}

// Push leaves the resident's reason out: their own words may name a
// condition, and a template message shows on a lock screen. Staff read it
// on the resident's page.
func (p ContractEnded) Push() storage.Push {
	return storage.Push{Key: p.Key, Kind: PushContractCancelled, Recipient: DoctorRecipient(p.DoctorID), Priority: PriorityTransactional,
		Fields: map[string]string{"number": p.Number, "resident": p.Resident}}
}

// ContractRenewal tells the doctor a resident renewed (续签).
type ContractRenewal struct {
	Key      string
	DoctorID int64
	Number   string
	Resident string
	TermEnd  string
}

func (p ContractRenewal) Push() storage.Push {
	return storage.Push{Key: p.Key, Kind: PushContractRenewed, Recipient: DoctorRecipient(p.DoctorID), Priority: PriorityTransactional,
		Fields: map[string]string{"number": p.Number, "resident": p.Resident, "term_end": p.TermEnd}}
}

// TeamChangeAnswer tells the resident's manager what the new team's doctor
// answered a 改签: confirmed when Reason is empty, declined with it
// otherwise; a confirmed move also tells the former doctor.
type TeamChangeAnswer struct {
	OpenID         string
	Number         string
	Doctor         string // the new team's
	Resident       string
	Team           string // confirmed: the new team; declined: the team that stays
	TermEnd        string
	Reason         string
	FormerDoctorID int64
	At             time.Time
}

func (p TeamChangeAnswer) Pushes() []storage.Push {
	key := fmt.Sprintf("contract:%s:team-change:%d:", p.Number, p.At.Unix())
	fields := map[string]string{"number": p.Number, "doctor": p.Doctor, "resident": p.Resident, "team": p.Team}
	if p.Reason != "" {
		fields["reason"] = p.Reason
		return []storage.Push{{Key: key + "declined", Kind: PushTeamChangeDeclined, Recipient: p.OpenID,
			Priority: PriorityTransactional, Fields: fields}}
	}
	fields["term_end"] = p.TermEnd
	return []storage.Push{
		{Key: key + "confirmed", Kind: PushTeamChangeConfirmed, Recipient: p.OpenID, Priority: PriorityTransactional, Fields: fields},
		{Key: key + "moved", Kind: PushTeamChanged, Recipient: DoctorRecipient(p.FormerDoctorID), Priority: PriorityTransactional,
			Fields: map[string]string{"number": p.Number, "resident": p.Resident, "team": p.Team}},
	}
}

// BookingNotice tells the doctor of an appointment booked, moved or
// cancelled (Kind is one of the three booking push kinds).
type BookingNotice struct {
	Kind      string
	Key       string
	DoctorID  int64
	Resident  string
	VisitKind string // clinic, home, …
	At        time.Time
	Was       time.Time // 改约: the time it moved from
}

func (p BookingNotice) Push() storage.Push {
	fields := map[string]string{"resident": p.Resident, "kind": kindName(p.VisitKind), "time": clock(p.At)}
	if !p.Was.IsZero() {
		fields["was"] = clock(p.Was)
	}
	return storage.Push{Key: p.Key, Kind: p.Kind, Recipient: DoctorRecipient(p.DoctorID), Priority: PriorityTransactional, Fields: fields}
}

// ReferralNotice tells the doctor a resident asks to be referred. It names
// the hospital, not the reason: a health detail, read in the console.
type ReferralNotice struct {
	ID       int64
	DoctorID int64
	Resident string
	Hospital string
	At       time.Time
}

func (p ReferralNotice) Push() storage.Push {
	// An empty hospital: the programme names none and the doctor chooses.
	return storage.Push{Key: fmt.Sprintf("referral:%d", p.ID), Kind: PushReferralRequest, Recipient: DoctorRecipient(p.DoctorID),
		Priority: PriorityTransactional, Fields: map[string]string{"resident": p.Resident, "hospital": p.Hospital, "time": clock(p.At)}}
}

// AppointmentReminder reminds the resident's manager of a visit, at Due.
type AppointmentReminder struct {
	Key       string
	OpenID    string
	Resident  string
	VisitKind string
	At, Due   time.Time
}

func (p AppointmentReminder) Push() storage.Push {
	// Once the visit has begun a reminder of it is no use.
	return storage.Push{Key: p.Key, Kind: PushAppointmentReminder, Recipient: p.OpenID, Priority: PriorityAppointment, Due: p.Due, StaleAt: p.At,
		Fields: map[string]string{"resident": p.Resident, "kind": kindName(p.VisitKind), "time": clock(p.At),
			"remark": mustMessage("reminder_how_to_stop", nil)}}
}

// DoctorLeave tells a resident's manager that leave recorded for the doctor
// covers a booked visit, with the doctor's apology and how to move it.
type DoctorLeave struct {
	AppointmentID int64
	OpenID        string
	Doctor        string
	Resident      string
	VisitKind     string
	At            time.Time
}

func (p DoctorLeave) Push() storage.Push {
	return storage.Push{Key: fmt.Sprintf("appointment:%d:leave:%d", p.AppointmentID, p.At.Unix()), Kind: PushBookingDoctorLeave,
		Recipient: p.OpenID, Priority: PriorityTransactional,
		Fields: map[string]string{"doctor": p.Doctor, "resident": p.Resident, "kind": kindName(p.VisitKind), "time": clock(p.At)}}
}

// DoctorLeavePush is the notice for one appointment that leave covers.
func DoctorLeavePush(a storage.AppointmentView) storage.Push {
	return DoctorLeave{AppointmentID: a.ID, OpenID: a.ManagerOpenID, Doctor: a.DoctorName, Resident: a.ResidentName,
		VisitKind: a.Kind, At: a.StartsAt}.Push()
}

// SatisfactionSurvey asks the resident's manager to score a visit.
type SatisfactionSurvey struct {
	AppointmentID int64
	OpenID        string
	Doctor        string
	VisitKind     string
	At            time.Time
}

func (p SatisfactionSurvey) Push() storage.Push {
	return storage.Push{Key: fmt.Sprintf("appointment:%d:survey", p.AppointmentID), Kind: PushSatisfaction, Recipient: p.OpenID,
		Priority: PriorityPersonal, Fields: map[string]string{"doctor": p.Doctor, "kind": kindName(p.VisitKind), "time": clock(p.At)}}
}

// DoctorAgenda tells a bound doctor how many visits the day holds.
type DoctorAgenda struct {
	DoctorID int64
	OpenID   string
	Day      time.Time // any moment of the day
	Count    int
	First    time.Time
}

func (p DoctorAgenda) Push() storage.Push {
	day := p.Day.In(Shanghai).Format("2006-01-02")
	// The agenda is for planning the day: by noon the morning's visits are
	// done and "今天有N个预约" has lost its point; a doctor asks 今日预约.
	noon := StartOfDay(p.Day).Add(12 * time.Hour)
	return storage.Push{Key: fmt.Sprintf("agenda:%d:%s", p.DoctorID, day), Kind: PushDoctorAgenda, Recipient: p.OpenID,
		Priority: PriorityTransactional, StaleAt: noon, Fields: map[string]string{"date": day, "count": strconv.Itoa(p.Count),
			"first": p.First.In(Shanghai).Format("15:04")}}
}

// SeasonalReminder is one resident's copy of a seasonal calendar entry.
type SeasonalReminder struct {
	Key      string
	OpenID   string
	Resident string
	Name     string // the entry's, to head it in a digest
	Text     string
	Article  string // a link, if the entry has one
	Due      time.Time
	From     time.Time // the day the entry's window opens, to order a digest
	StaleAt  time.Time // the end of the entry's window: nothing carries it past, but to the digest after
}

func (p SeasonalReminder) Push() storage.Push {
	push := storage.Push{Key: p.Key, Kind: PushSeasonal, Recipient: p.OpenID, Priority: PrioritySeasonal, Due: p.Due, StaleAt: p.StaleAt,
		Fields: map[string]string{"title": "季节健康提示", "resident": p.Resident, "name": p.Name, "text": p.Text, "article": p.Article,
			"remark": mustMessage("broadcast_how_to_stop", nil)}}
	if !p.From.IsZero() {
		push.Fields["from"] = p.From.In(Shanghai).Format(time.DateOnly)
	}
	if !p.StaleAt.IsZero() {
		push.Fields["until"] = p.StaleAt.Format(time.RFC3339)
	}
	return push
}

// PersonalReminder is a reminder from a resident's own contract: a
// follow-up or check-up due, renewal.
type PersonalReminder struct {
	Key      string
	OpenID   string
	Resident string
	Text     string
	Due      time.Time
}

func (p PersonalReminder) Push() storage.Push {
	return storage.Push{Key: p.Key, Kind: PushPersonal, Recipient: p.OpenID, Priority: PriorityPersonal, Due: p.Due,
		Fields: map[string]string{"title": "健康提醒", "resident": p.Resident, "text": p.Text,
			"remark": mustMessage("reminder_how_to_stop", nil)}}
}

// LateReply is a conversation's reply that missed WeChat's five seconds and
// could not be sent at once after them.
type LateReply struct {
	OpenID     string
	MessageKey string // the dedupe key of the message it answers
	Text       string
}

func (p LateReply) Push() storage.Push {
	return storage.Push{Key: "late-reply:" + p.OpenID + ":" + p.MessageKey, Kind: PushLateReply, Recipient: p.OpenID,
		Priority: PriorityTransactional, Fields: map[string]string{"text": p.Text}}
}
