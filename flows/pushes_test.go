package flows

import (
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// Every push the code can make renders with the real words: each kind's
// constructor is called with what its callers know, and the words may use
// only the fields it sets, so a constructor that forgets a field its words
// need fails here. Callers that leave a value empty are caught by the
// conversation tests, which read the pushes they make.
func TestEveryPushConstructorRendersItsWords(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, Shanghai)
	pushes := []storage.Push{
		SignRequest{Key: "k", DoctorID: 1, Number: "QY2611240001", Resident: "王秀英", Community: "幸福社区", At: at}.Push(),
		SignAnswer{OpenID: "o", Number: "QY2611240001", Doctor: "林静", Resident: "王秀英", TermEnd: "2027-11-23"}.Push(),
		SignAnswer{OpenID: "o", Number: "QY2611240001", Doctor: "林静", Resident: "王秀英", Reason: "不在服务范围", Phone: "0531-88886666"}.Push(),
		ContractEnded{Key: "k", DoctorID: 1, Number: "QY2611240001", Resident: "王秀英", Reason: "搬家"}.Push(),
		ContractRenewal{Key: "k", DoctorID: 1, Number: "QY2611240001", Resident: "王秀英", TermEnd: "2028-11-23"}.Push(),
		BookingNotice{Kind: PushBookingCreated, Key: "k", DoctorID: 1, Resident: "王秀英", VisitKind: "clinic", At: at}.Push(),
		ReferralNotice{ID: 1, DoctorID: 1, Resident: "王秀英", Hospital: "哈尔滨市第一医院", At: at}.Push(),
		ReferralNotice{ID: 2, DoctorID: 1, Resident: "王秀英", At: at}.Push(),
		DeletionAnswer{Request: 1, OpenID: "o", Resident: "王秀英", Answer: "已删除手机号"}.Push(),
		MemberConfirmed{OpenID: "o", Number: "QY2611240001", Resident: "王小花", Doctor: "林静"}.Push(),
		BookingNotice{Kind: PushBookingChanged, Key: "k", DoctorID: 1, Resident: "王秀英", VisitKind: "home", At: at, Was: at.Add(-24 * time.Hour)}.Push(),
		BookingNotice{Kind: PushBookingCancelled, Key: "k", DoctorID: 1, Resident: "王秀英", VisitKind: "checkup", At: at}.Push(),
		AppointmentReminder{Key: "k", OpenID: "o", Resident: "王秀英", VisitKind: "clinic", At: at, Due: at.Add(-2 * time.Hour)}.Push(),
		DoctorLeavePush(storage.AppointmentView{ID: 1, ManagerOpenID: "o", DoctorName: "林静", ResidentName: "王秀英", Kind: "clinic", StartsAt: at}),
		SatisfactionSurvey{AppointmentID: 1, OpenID: "o", Doctor: "林静", VisitKind: "clinic", At: at}.Push(),
		DoctorAgenda{DoctorID: 1, OpenID: "o_doc", Day: at, Count: 3, First: at}.Push(),
		SeasonalReminder{Key: "k", OpenID: "o", Resident: "王秀英", Name: "立冬", Text: "立冬了，注意保暖。", Due: at}.Push(),
		PersonalReminder{Key: "k", OpenID: "o", Resident: "王秀英", Text: "该做随访了。", Due: at}.Push(),
		LateReply{OpenID: "o", MessageKey: "m1", Text: "好的"}.Push(),
		TeamHandover{Key: "h", From: "林静家庭医生团队", To: "郭建华家庭医生团队", Doctor: "郭建华", DoctorID: 2, At: at}.ToResident("o", "QY2611240001", "王秀英"),
		TeamHandover{Key: "h", From: "林静家庭医生团队", To: "郭建华家庭医生团队", Doctor: "郭建华", DoctorID: 2, At: at}.ToDoctor(12, 3),
		SignFollowUp{Number: "QY2611240001", DoctorID: 1, Doctor: "林静", OpenID: "o", Resident: "王秀英", Days: 2}.Reminder(),
		SignFollowUp{Number: "QY2611240001", DoctorID: 1, Doctor: "林静", OpenID: "o", Resident: "王秀英", Days: 5, Phone: "0531-1"}.Waiting(),
	}
	pushes = append(pushes, TeamChangeAnswer{OpenID: "o", Number: "QY2611240001", Doctor: "郭建华", Resident: "王秀英",
		Team: "郭建华家庭医生团队", TermEnd: "2027-11-23", FormerDoctorID: 1, At: at}.Pushes()...)
	pushes = append(pushes, TeamChangeAnswer{OpenID: "o", Number: "QY2611240001", Doctor: "郭建华", Resident: "王秀英",
		Team: "林静家庭医生团队", Reason: "不在服务范围", FormerDoctorID: 1, At: at}.Pushes()...)
	made := map[string]bool{}
	for _, p := range pushes {
		// Only an agenda (by noon of its day) and a visit reminder (once the
		// visit begins) lose their point; everything else is sent however late.
		wantStale := map[string]time.Time{PushDoctorAgenda: StartOfDay(at).Add(12 * time.Hour), PushAppointmentReminder: at}[p.Kind]
		if !p.StaleAt.Equal(wantStale) {
			t.Errorf("%s goes stale at %s, want %s", p.Kind, p.StaleAt, wantStale)
		}
		made[p.Kind] = true
		text, err := PushText(p.Kind, p.Fields)
		if err != nil || text == "" || strings.Contains(text, "<no value>") {
			t.Errorf("%s: %q %v", p.Kind, text, err)
		}
		if p.Key == "" || p.Recipient == "" {
			t.Errorf("%s: no key or recipient: %+v", p.Kind, p)
		}
		for field, value := range p.Fields {
			// A seasonal entry may have no link, a referral no hospital.
			if value == "" && field != "article" && field != "hospital" {
				t.Errorf("%s: field %s is empty", p.Kind, field)
			}
		}
	}
	for _, kind := range append(PushKinds, PushLateReply) {
		if !made[kind] {
			t.Errorf("push kind %s has no constructor in this test", kind)
		}
		if title, err := PushTitle(kind); err != nil || title == "" {
			t.Errorf("push kind %s has no title: %v", kind, err)
		}
	}
}
