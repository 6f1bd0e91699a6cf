package profile

import (
	"context"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
)

func TestEveryRegionHasDemoData(t *testing.T) {
	for _, region := range templates.ProfileCodes() {
		t.Run(region, func(t *testing.T) {
			db := storagetest.SQLite(t)
			ctx := context.Background()
			loaded, err := LoadDemo(ctx, db, region)
			if err != nil || !loaded {
				t.Fatalf("load: %v %v", loaded, err)
			}
			cs, _ := db.Communities(ctx)
			docs, _ := db.Doctors(ctx)
			if len(cs) < 2 || len(cs) > 9 || len(docs) < 2 {
				t.Fatalf("%d communities, %d doctors", len(cs), len(docs))
			}
			teams, _ := db.TeamsServing(ctx, cs[0].ID)
			if len(teams) == 0 || teams[0].DoctorID != docs[0].ID {
				t.Fatalf("community 1 must be served by team 1, led by the first doctor: %+v", teams)
			}
			if sessions, _ := db.WeeklyHours(ctx, docs[0].ID); len(sessions) != 14 {
				t.Fatalf("%d demo sessions, want two a day", len(sessions))
			}
			// Marked, so production refuses it until jiayi demo remove.
			if demo, err := db.DemoInstitutions(ctx); err != nil || len(demo) != 1 || demo[0].ID != docs[0].InstitutionID {
				t.Fatalf("demo institutions %+v, %v", demo, err)
			}
			if again, err := LoadDemo(ctx, db, region); again || err != nil {
				t.Fatalf("second load: %v %v", again, err)
			}
		})
	}
}

func TestDemoRolesFollowTheTeamModel(t *testing.T) {
	f := demoFile{Communities: make([]demoCommunity, 2), Teams: make([]demoTeam, 2)}
	for i := range f.Teams {
		f.Teams[i].Name, f.Teams[i].Doctor.Name, f.Teams[i].Communities = "t", "d", []int{2}
	}
	f.Teams[1].Communities = []int{7}
	f.Teams[0].Members = []demoMember{{Role: "宇航员", Name: "x"}}
	err := checkDemo(f, Settings{TeamModel: TeamModel{Roles: []string{"护士"}}})
	for _, want := range []string{"team 1 must serve community 1", "serves community 7 of 2", `role "宇航员"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v lacks %q", err, want)
		}
	}
}
