package flows

import "github.com/jiayi-health/jiayi/templates"

// Push kinds: what the bot says unprompted. Each has a WeChat template
// configured in production (JIAYI_WECHAT_TEMPLATES) and one in the sandbox.
const (
	PushSignRequest   = "sign_request"   // to the doctor: a resident asks to sign
	PushSignConfirmed = "sign_confirmed" // to the resident: the doctor confirmed
	PushSignDeclined  = "sign_declined"  // to the resident: the doctor declined, with the reason

	PushContractCancelled = "contract_cancelled" // to the doctor: the resident ended the contract
	PushContractRenewed   = "contract_renewed"   // to the doctor: the resident renewed

	PushBookingCreated      = "booking_created"      // to the doctor: a new appointment
	PushBookingChanged      = "booking_changed"      // to the doctor: an appointment moved
	PushBookingCancelled    = "booking_cancelled"    // to the doctor: an appointment cancelled
	PushAppointmentReminder = "appointment_reminder" // to the resident: the day before and 2 hours before
	PushSatisfaction        = "satisfaction_survey"  // to the resident after a visit: a score 1-5
	PushDoctorAgenda        = "doctor_agenda"        // to the doctor at 07:30: the day's visits
	PushSeasonal            = "seasonal_reminder"    // to residents: the seasonal calendar
	PushPersonal            = "personal_reminder"    // to residents: follow-ups, check-ups, renewal
	PushLateReply           = "late_reply"           // a reply that missed WeChat's 5 seconds and its first delivery
)

// Reminder kinds residents can turn off in 提醒设置.
var (
	SeasonalKinds = []string{PushSeasonal}
	PersonalKinds = []string{PushAppointmentReminder, PushPersonal}
)

// PushKinds lists every kind, for configuration checks and the sandbox.
var PushKinds = []string{PushSignRequest, PushSignConfirmed, PushSignDeclined, PushContractCancelled, PushContractRenewed,
	PushBookingCreated, PushBookingChanged, PushBookingCancelled, PushAppointmentReminder, PushSatisfaction, PushDoctorAgenda, PushSeasonal, PushPersonal}

// Priorities under WeChat's daily quotas: transactional first.
const (
	PriorityTransactional = 0
	PriorityAppointment   = 1
	PriorityPersonal      = 2
	PrioritySeasonal      = 3
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
