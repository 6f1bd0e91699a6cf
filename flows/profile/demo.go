package profile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

type demoFile struct {
	Institution struct {
		Code string `yaml:"code"`
		Name string `yaml:"name"`
		Kind string `yaml:"kind"`
		// Phone is told to residents who need the clinic (a refusal, a
		// health question, 不知道): a made-up number in every demo.
		Phone string `yaml:"phone"`
	} `yaml:"institution"`
	Communities []demoCommunity `yaml:"communities"`
	Teams       []demoTeam      `yaml:"teams"`
}

type demoCommunity struct {
	Town string `yaml:"town"`
	Name string `yaml:"name"`
}

type demoTeam struct {
	Name   string `yaml:"name"`
	Doctor struct {
		Name  string `yaml:"name"`
		Title string `yaml:"title"`
	} `yaml:"doctor"`
	Members     []demoMember `yaml:"members"`
	Communities []int        `yaml:"communities"` // numbers in the communities list, from 1
}

type demoMember struct {
	Role string `yaml:"role"`
	Name string `yaml:"name"`
}

// LoadDemo gives an empty sandbox database the region's demo organisation:
// two to nine communities and at least two teams, team 1 serving
// community 1. It does nothing where an organisation exists and reports
// whether it loaded.
func LoadDemo(ctx context.Context, db *storage.DB, region string) (bool, error) {
	if has, err := db.HasOrganisation(ctx); err != nil || has {
		return false, err
	}
	data, path, err := templates.Demo(region)
	if err != nil {
		return false, err
	}
	c, err := Load(region)
	if err != nil {
		return false, err
	}
	settings, err := SettingsOf(c)
	if err != nil {
		return false, err
	}
	var f demoFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkDemo(f, settings); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	var communities []storage.Community
	for _, c := range f.Communities {
		communities = append(communities, storage.Community{Town: c.Town, Name: c.Name})
	}
	var teams []storage.NewTeam
	for _, t := range f.Teams {
		nt := storage.NewTeam{Name: t.Name, Doctor: storage.Doctor{Name: t.Doctor.Name, Title: t.Doctor.Title}}
		for _, m := range t.Members {
			nt.Members = append(nt.Members, storage.Member{Role: m.Role, Name: m.Name})
		}
		for _, n := range t.Communities {
			nt.Communities = append(nt.Communities, n-1)
		}
		teams = append(teams, nt)
	}
	// Marked as the demo, so production refuses the database until
	// `jiayi demo remove` has deleted it.
	inst := storage.Institution{Code: f.Institution.Code, Name: f.Institution.Name, Kind: f.Institution.Kind,
		Phone: f.Institution.Phone, Demo: true}
	if _, err := db.CreateInstitution(ctx, inst, communities, teams); err != nil {
		return false, err
	}
	return true, demoSchedules(ctx, db, settings.Appointments.MinVisitMinutes)
}

// demoSchedules opens every demo doctor every day, weekends included,
// 08:00-11:30 and 14:00-17:00, so the sandbox can be tried at any hour.
func demoSchedules(ctx context.Context, db *storage.DB, slotMinutes int) error {
	doctors, err := db.Doctors(ctx)
	if err != nil {
		return err
	}
	for _, d := range doctors {
		for weekday := range 7 {
			for _, hours := range [][2]int{{8 * 60, 11*60 + 30}, {14 * 60, 17 * 60}} {
				if err := db.AddWeeklyHours(ctx, storage.WeeklyHours{DoctorID: d.ID, Weekday: weekday,
					StartMinute: hours[0], EndMinute: hours[1], SlotMinutes: slotMinutes, Capacity: 1}, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func checkDemo(f demoFile, s Settings) error {
	var errs []error
	if n := len(f.Communities); n < 2 || n > 9 {
		errs = append(errs, fmt.Errorf("demo data needs 2 to 9 communities, has %d", n))
	}
	if len(f.Teams) < 2 {
		errs = append(errs, fmt.Errorf("demo data needs at least two teams"))
	}
	if len(f.Teams) > 0 && !slices.Contains(f.Teams[0].Communities, 1) {
		errs = append(errs, fmt.Errorf("team 1 must serve community 1"))
	}
	for _, t := range f.Teams {
		if t.Name == "" || t.Doctor.Name == "" || len(t.Communities) == 0 {
			errs = append(errs, fmt.Errorf("team %q needs a name, a doctor and communities", t.Name))
		}
		for _, n := range t.Communities {
			if n < 1 || n > len(f.Communities) {
				errs = append(errs, fmt.Errorf("team %s serves community %d of %d", t.Name, n, len(f.Communities)))
			}
		}
		for _, m := range t.Members {
			if !slices.Contains(s.TeamModel.Roles, m.Role) {
				errs = append(errs, fmt.Errorf("team %s: role %q is not in the profile's team model %v", t.Name, m.Role, s.TeamModel.Roles))
			}
		}
	}
	return errors.Join(errs...)
}
