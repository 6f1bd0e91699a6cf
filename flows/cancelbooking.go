package flows

import (
	"errors"
	"fmt"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// 取消 N asks before cancelling the N-th line of 我的预约; 改约 N runs the
// booking conversation from the date (booking.go).

// cancelData is the appointment 取消 N asks about.
type cancelData struct {
	Appointment int64 `json:"appointment"`
}

type cancelTurn = turn[cancelData]

// cancelBooking confirms and makes a cancellation; it starts from 取消 N.
var cancelBooking = declare(&conversation[cancelData]{
	about: about{name: "cancel_booking", title: "取消预约", help: "appointment_cancel_help", version: 1, cancelIsYes: true},
	steps: []step[cancelData]{{name: "confirm", ask: askCancelBooking, take: takeCancelBooking}},
})

func cancelAppointment(t *cancelTurn) (storage.AppointmentView, error) {
	if t.d.Appointment == 0 {
		return storage.AppointmentView{}, missing(t.st.Flow, "appointment")
	}
	return t.e.DB.Appointment(t, t.d.Appointment)
}

func askCancelBooking(t *cancelTurn) (string, error) {
	a, err := cancelAppointment(t)
	if err != nil {
		return "", err
	}
	return templates.Message("appointment_cancel_confirm", map[string]any{
		"When": dayLabel(a.StartsAt.In(Shanghai).Format("2006-01-02")) + " " + slotLabel(a.StartsAt, a.EndsAt),
		"Kind": kindName(a.Kind), "Doctor": a.DoctorName, "Name": a.ResidentName})
}

// cancelMeant reads the answer to 要取消这个预约吗: 确认, or a plain yes (是的,
// 对，取消吧); anything else keeps the visit.
func cancelMeant(said string) bool {
	return answerWith(said, "确认", []string{"取消", "好", "是", "对", "行", "可以", "嗯"}) == answeredYes
}

func takeCancelBooking(t *cancelTurn, said string) (string, error) {
	if !cancelMeant(said) {
		return "", stopWith("appointment_kept", nil)
	}
	a, err := cancelAppointment(t)
	if err != nil {
		return "", err
	}
	rules, err := t.e.rules(t)
	if err != nil {
		return "", err
	}
	if a.StartsAt.Sub(t.in.At) < rules.CancelBefore() && !a.SlotClosed {
		return "", stopWith("appointment_too_late", int(rules.CancelBefore().Hours()))
	}
	err = t.e.DB.CancelAppointment(t, a.ID, t.in.At, []storage.Push{BookingNotice{Kind: PushBookingCancelled,
		Key: fmt.Sprintf("appointment:%d:cancelled", a.ID), DoctorID: a.DoctorID, Resident: a.ResidentName, VisitKind: a.Kind,
		At: a.StartsAt}.Push()})
	if errors.Is(err, storage.ErrStatusChanged) {
		return "", stopWith("book_gone", nil)
	}
	if err != nil {
		return "", err
	}
	return "", stopWith("appointment_cancelled", nil)
}
