package flows

import (
	"context"
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/storage"
)

// Binding codes are read off a screen or paper and typed on a phone: no
// letters or digits that look alike.
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// BindingCodeTTL is how long a doctor's binding code stays valid by default.
const BindingCodeTTL = 72 * time.Hour

// NewBindingCode makes a random 8-character code (about 40 bits).
func NewBindingCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// codeHash is how a binding code is kept: a keyed hash, never the code.
func codeHash(s *storage.Sealer, code string) string {
	return s.Hash("binding_code", code)
}

// IssueBindingCode gives an unbound doctor a fresh single-use code, valid
// for ttl from now, and returns it to be handed to the doctor.
func IssueBindingCode(ctx context.Context, db *storage.DB, s *storage.Sealer, doctorID int64, now time.Time, ttl time.Duration) (string, error) {
	code := NewBindingCode()
	if err := db.SetBindingCode(ctx, doctorID, codeHash(s, code), now.Add(ttl)); err != nil {
		return "", err
	}
	return code, nil
}

// Doctors speak to the bot with three commands: 绑定 CODE binds their WeChat
// to their doctor record; 确认 NUMBER and 拒绝 NUMBER 原因 answer a sign
// request. They work whatever conversation is open.
var (
	bindCommand = regexp.MustCompile(`^绑定\s*([A-Za-z0-9]{4,16})$`)
	// A number is QY and ten digits, eleven from a day's 10,000th signing
	// and twelve from its 100,000th.
	confirmCommand = regexp.MustCompile(`^确认\s*((?i:qy)\d{10,12})$`)
	// The number ends where its digits do: a reason may follow, but not
	// another digit (拒绝 QY26120300011 is the number QY26120300011, not
	// QY2612030001 for "1").
	declineCommand = regexp.MustCompile(`^拒绝\s*((?i:qy)\d{10,12})(?:\s*([^\d\s].*))?\s*$`)
	// A number that is not one (QY and too few or many digits): say what
	// one looks like rather than treat it as a resident's words.
	badNumberCommand = regexp.MustCompile(`^(?:确认|拒绝)\s*(?i:qy)\s*\d*(?:\s.*)?$`)
)

// maxBindingFailures a day slows down anyone guessing codes.
const maxBindingFailures = 5

// doctorCommand answers a doctor's command; ok is false for anything else.
func (e *Engine) doctorCommand(ctx context.Context, _ *State, said string, in Inbound) (replies []string, ok bool, err error) {
	if m := bindCommand.FindStringSubmatch(said); m != nil {
		replies, err = e.bind(ctx, strings.ToUpper(m[1]), in)
		return replies, true, err
	}
	if m := confirmCommand.FindStringSubmatch(said); m != nil {
		replies, err = e.answerSignRequest(ctx, strings.ToUpper(m[1]), "", in)
		return replies, true, err
	}
	if m := declineCommand.FindStringSubmatch(said); m != nil {
		number, reason := strings.ToUpper(m[1]), strings.TrimSpace(m[2])
		if reason == "" {
			replies, err = say("doctor_decline_needs_reason", number)
			return replies, true, err
		}
		if utf8.RuneCountInString(reason) > maxDeclineRunes {
			replies, err = say("text_too_long", maxDeclineRunes)
			return replies, true, err
		}
		replies, err = e.answerSignRequest(ctx, number, reason, in)
		return replies, true, err
	}
	if badNumberCommand.MatchString(said) {
		replies, err = say("doctor_number_format", nil)
		return replies, true, err
	}
	return nil, false, nil
}

func (e *Engine) bind(ctx context.Context, code string, in Inbound) ([]string, error) {
	day := in.At.In(Shanghai).Format("20060102")
	failures, err := e.DB.BindingFailures(ctx, in.OpenID, day)
	if err != nil {
		return nil, err
	}
	if failures >= maxBindingFailures {
		return say("doctor_bind_limit", nil)
	}
	d, err := e.DB.BindDoctor(ctx, codeHash(e.Sealer, code), in.OpenID, in.At)
	if errors.Is(err, storage.ErrCodeInvalid) {
		if err := e.DB.AddBindingFailure(ctx, in.OpenID, day); err != nil {
			return nil, err
		}
		return say("doctor_bind_invalid", nil)
	}
	if err != nil {
		return nil, err
	}
	return say("doctor_bound", d.Name)
}

// answerSignRequest confirms (reason "") or declines a pending contract of
// the doctor's, and tells the resident.
func (e *Engine) answerSignRequest(ctx context.Context, number, reason string, in Inbound) ([]string, error) {
	doctor, err := e.DB.DoctorByOpenID(ctx, in.OpenID)
	if errors.Is(err, storage.ErrNotFound) {
		return say("doctor_not_bound", nil)
	}
	if err != nil {
		return nil, err
	}
	c, err := e.DB.ContractByNumber(ctx, number)
	if err == nil && c.ChangeDoctorID.Valid && c.ChangeDoctorID.Int64 == doctor.ID {
		return e.answerTeamChange(ctx, c, doctor, reason, in)
	}
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.DoctorID != doctor.ID) {
		return say("contract_not_yours", number) // the same words whether it exists or not
	}
	if err != nil {
		return nil, err
	}
	if c.AwaitingMember {
		return say("contract_awaiting_member", number)
	}
	termEnd, err := AnswerSignRequest(ctx, e.DB, c, in.OpenID, reason, in.At)
	if errors.Is(err, storage.ErrStatusChanged) {
		return say("contract_already_answered", number)
	}
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return say("doctor_confirmed", map[string]any{"Number": number, "Resident": c.ResidentName, "End": termEnd})
	}
	return say("doctor_declined", map[string]any{"Number": number, "Resident": c.ResidentName})
}

// AnswerSignRequest confirms (reason "") or declines a pending contract in
// its doctor's name and tells the resident; it returns the term's last day
// on a confirmation. Doctors answer in chat; staff answer in the console
// for a doctor who has not bound WeChat. A contract no longer pending is
// storage.ErrStatusChanged.
func AnswerSignRequest(ctx context.Context, db *storage.DB, c storage.ContractView, actor, reason string, at time.Time) (string, error) {
	change := storage.StatusChange{Number: c.Number, From: storage.ContractPending, Actor: actor, Reason: reason}
	answer := SignAnswer{OpenID: c.ManagerOpenID, Number: c.Number, Doctor: c.DoctorName, Resident: c.ResidentName, Reason: reason}
	change.To = storage.ContractDeclined
	if reason != "" { // a refusal says whom to ask
		phone, err := TeamPhone(ctx, db, c.TeamID)
		if err != nil {
			return "", err
		}
		answer.Phone = phone
	}
	if reason == "" {
		answer.TermEnd = at.In(Shanghai).AddDate(0, c.TermMonths, -1).Format("2006-01-02")
		change.To, change.TermEnd = storage.ContractActive, answer.TermEnd
	}
	change.Notify = []storage.Push{answer.Push()}
	return change.TermEnd, db.ChangeStatus(ctx, change)
}

// answerTeamChange confirms (reason "") or declines a 改签 to the doctor's
// team; the resident is told, and on a move the former doctor too.
func (e *Engine) answerTeamChange(ctx context.Context, c storage.ContractView, doctor storage.Doctor, reason string, in Inbound) ([]string, error) {
	err := AnswerTeamChange(ctx, e.DB, c, doctor.Name, in.OpenID, reason, in.At)
	if errors.Is(err, storage.ErrStatusChanged) {
		return say("contract_already_answered", c.Number)
	}
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return say("doctor_confirmed", map[string]any{"Number": c.Number, "Resident": c.ResidentName, "End": c.TermEnd.String})
	}
	return say("doctor_declined", map[string]any{"Number": c.Number, "Resident": c.ResidentName})
}

// AnswerTeamChange confirms (reason "") or declines a 改签 waiting for the
// new team's doctor, in that doctor's name; the resident is told, and on a
// move the former doctor too. Staff answer in the console for a doctor who
// has not bound WeChat.
func AnswerTeamChange(ctx context.Context, db *storage.DB, c storage.ContractView, doctorName, actor, reason string, at time.Time) error {
	answer := TeamChangeAnswer{OpenID: c.ManagerOpenID, Number: c.Number, Doctor: doctorName, Resident: c.ResidentName,
		Team: c.TeamName, TermEnd: c.TermEnd.String, Reason: reason, FormerDoctorID: c.DoctorID, At: at}
	if reason == "" {
		answer.Team = c.ChangeTeamName.String
	}
	return db.AnswerTeamChange(ctx, c.Number, c.ChangeDoctorID.Int64, reason == "", actor, reason, answer.Pushes())
}
