package push

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A year of reminders on a fake clock: a hypertensive 71-year-old signs on
// 2026-11-23 with the chronic and elderly packages; the scheduler runs
// twice a day (two instances) and the dispatcher mornings. Every expected
// push reaches the WeChat stand-in exactly once.
func TestAYearOfRemindersEachOnce(t *testing.T) {
	ctx := context.Background()
	db, rdb := storagetest.SQLite(t), storagetest.Embedded(t)
	if err := profile.Ensure(ctx, db, "national"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadDemo(ctx, db, "national"); err != nil {
		t.Fatal(err)
	}
	cs, _ := db.Communities(ctx)
	teams, _ := db.TeamsServing(ctx, cs[0].ID)
	sealer, err := storage.NewSealer(bytes.Repeat([]byte{4}, 32))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := flows.SealGroups(sealer, []string{"hypertension"})
	if err != nil {
		t.Fatal(err)
	}
	signedAt := time.Date(2026, 11, 23, 10, 0, 0, 0, flows.Shanghai)
	number, _, err := db.CreateContract(ctx, storage.NewContract{RequestKey: "year", Day: "261123",
		Resident: storage.NewResident{ManagerOpenID: "o_year", Relation: "self", Name: "王秀英", IDSealed: "x", IDHash: "h",
			PhoneSealed: "y", PhoneHash: "p", BirthDate: "1955-03-02", Sex: "female", CommunityID: cs[0].ID, GroupsSealed: groups},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "v", AgreedAt: signedAt, ConsentVersion: "v", ConsentedAt: signedAt, ConsentBy: "o_year",
		Packages: []storage.ContractPackage{{Code: "basic", Kind: "basic"}, {Code: "chronic", Kind: "personalised"}, {Code: "elderly", Kind: "personalised"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: "2027-11-22"}); err != nil {
		t.Fatal(err)
	}
	db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_year", Subscribed: true, EventTime: signedAt}})
	// A neighbour of 50 with the basic package alone and no chronic disease:
	// its chronic follow-up item is not for her, so she is never told one is due.
	other, _, err := db.CreateContract(ctx, storage.NewContract{RequestKey: "year-other", Day: "261123",
		Resident: storage.NewResident{ManagerOpenID: "o_year_other", Relation: "self", Name: "李红", IDSealed: "x2", IDHash: "h2",
			PhoneSealed: "y2", PhoneHash: "p2", BirthDate: "1976-05-02", Sex: "female", CommunityID: cs[0].ID},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "v", AgreedAt: signedAt, ConsentVersion: "v", ConsentedAt: signedAt, ConsentBy: "o_year_other",
		Packages: []storage.ContractPackage{{Code: "basic", Kind: "basic"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeStatus(ctx, storage.StatusChange{Number: other, From: "pending", To: "active", Actor: "d", TermEnd: "2027-11-22"}); err != nil {
		t.Fatal(err)
	}
	db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_year_other", Subscribed: true, EventTime: signedAt}})

	d, standIn := dispatcher(t, db, rdb)
	d.Templates = map[string]string{flows.PushPersonal: "tpl_personal", flows.PushSeasonal: "tpl_seasonal"}
	for day := signedAt; !day.After(time.Date(2027, 11, 22, 23, 0, 0, 0, flows.Shanghai)); day = day.AddDate(0, 0, 1) {
		morning := time.Date(day.Year(), day.Month(), day.Day(), 8, 30, 0, 0, flows.Shanghai)
		for _, at := range []time.Time{morning, morning.Add(time.Hour)} { // two instances
			if _, err := flows.RunPersonal(ctx, db, sealer, at); err != nil {
				t.Fatal(err)
			}
			if _, err := flows.RunSeasonal(ctx, db, sealer, at); err != nil {
				t.Fatal(err)
			}
		}
		d.Now = func() time.Time { return morning.Add(2 * time.Hour) }
		for d.DispatchOnce(ctx) > 0 {
		}
	}
	got, seasonal := map[string]int{}, map[string]int{}
	for _, m := range standIn.Outbox("o_year") {
		var msg struct {
			TemplateID string                            `json:"template_id"`
			Data       map[string]struct{ Value string } `json:"data"`
		}
		json.Unmarshal(m.Data, &msg)
		text := msg.Data["text"].Value
		if msg.TemplateID == "tpl_seasonal" {
			seasonal[text]++
		}
		for _, what := range []string{"到期", "慢病随访", "老年人健康体检", "流感疫苗", "立冬", "入伏", "花粉", "全国高血压日", "重阳节", "世界肾脏日", "每年有4次"} {
			if strings.Contains(text, what) {
				got[what]++
			}
		}
	}
	want := map[string]int{
		"到期":      2, // renewal, 30 and 7 days before the end
		"慢病随访":    4, // every 91 days with none done or booked
		"每年有4次":   4, // what her packages promise, said in each
		"老年人健康体检": 1, "流感疫苗": 1, "立冬": 1, "入伏": 1, "花粉": 1, "全国高血压日": 1, "重阳节": 1, "世界肾脏日": 1,
	}
	for what, n := range want {
		if got[what] != n {
			t.Errorf("%s: %d pushes, want %d", what, got[what], n)
		}
	}
	// Every seasonal reminder for her (65+, hypertension) once.
	for text, n := range seasonal {
		if n != 1 {
			t.Errorf("%d times: %s", n, text)
		}
	}
	if len(seasonal) < 20 {
		t.Errorf("only %d seasonal reminders in a year", len(seasonal))
	}
	if total := len(standIn.Outbox("o_year")); total != 7+len(seasonal) {
		t.Errorf("%d pushes in all, want 7 personal and %d seasonal", total, len(seasonal))
	}
	for _, m := range standIn.Outbox("o_year_other") {
		if strings.Contains(string(m.Data), "慢病随访") {
			t.Errorf("a resident with no chronic disease was reminded of a chronic follow-up: %s", m.Data)
		}
	}
	if n := len(standIn.Outbox("o_year_other")); n < 3 { // the renewals and the reminders for everyone still reach her
		t.Errorf("the neighbour got %d pushes", n)
	}
}
