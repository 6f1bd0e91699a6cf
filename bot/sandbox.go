package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/admin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// loadDemo gives a new sandbox the region's demo organisation, and every
// unbound demo doctor a fresh binding code, so the doctor's side can be tried.
func (s *Server) loadDemo(ctx context.Context) error {
	loaded, err := profile.LoadDemo(ctx, s.DB, s.Config.Region)
	if err != nil {
		return err
	}
	if loaded {
		s.log.Info("sandbox demo data loaded", "region", s.Config.Region)
	}
	// The demo doctors' slots exist before the first resident asks; the
	// daily job keeps them going.
	if _, err := flows.MaterialiseSlots(ctx, s.DB, time.Now()); err != nil {
		return err
	}
	doctors, err := s.DB.Doctors(ctx)
	if err != nil {
		return err
	}
	if err := s.demoAdmin(ctx); err != nil {
		return err
	}
	s.demoCodes = map[int64]string{}
	for _, d := range doctors {
		if d.OpenID.Valid || s.demoCodes[d.ID] != "" {
			continue
		}
		code, err := flows.IssueBindingCode(ctx, s.DB, s.Sealer, d.ID, time.Now(), s.Config.BindingTTL)
		if err != nil {
			return err
		}
		s.demoCodes[d.ID] = code
	}
	return nil
}

// ErrDemoData says a production start found the sandbox's demo data.
var ErrDemoData = errors.New("this database holds sandbox demo data")

// refuseDemoData stops a production start on a database a sandbox loaded
// its demo organisation into: the demo doctors' binding codes were handed
// out at /sandbox/demo, and whoever bound as one would be sent residents'
// sign requests.
func refuseDemoData(ctx context.Context, db *storage.DB) error {
	demo, err := db.DemoInstitutions(ctx)
	if err != nil || len(demo) == 0 {
		return err
	}
	var names []string
	for _, in := range demo {
		names = append(names, in.Name+" (code "+in.Code+")")
	}
	return fmt.Errorf("%w (the demo institution %s, its doctors and their binding codes); "+
		"run `jiayi demo remove` to delete it before going live", ErrDemoData, strings.Join(names, ", "))
}

// demoAdminName is the sandbox's console admin.
const demoAdminName = "admin"

// demoAdmin makes sure the sandbox has a console admin for the demo
// institution. Its password is derived from the personal-data key, so it
// stays the same across restarts and differs between machines.
func (s *Server) demoAdmin(ctx context.Context) error {
	inst, err := s.DB.InstitutionByCode(ctx, "demo")
	if errors.Is(err, storage.ErrNotFound) {
		return nil // a sandbox on a database with an organisation of its own
	}
	if err != nil {
		return err
	}
	s.demoPassword = s.Sealer.Hash("sandbox", "console admin")[:16]
	staff, err := s.DB.StaffByUsername(ctx, demoAdminName)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_, err = admin.CreateStaff(ctx, s.DB, storage.Scope{}, admin.NewStaff{Username: demoAdminName, Role: storage.RoleAdmin,
			Institution: inst.ID, Password: s.demoPassword}, "sandbox")
	case err == nil && !admin.VerifyPassword(staff.PasswordHash, s.demoPassword):
		err = s.DB.SetStaffPassword(ctx, storage.Scope{}, staff.ID, admin.HashPassword(s.demoPassword), "sandbox")
	}
	if err != nil {
		return err
	}
	s.log.Warn("SANDBOX MODE: the staff console is at /admin/; sign in as " + demoAdminName + " with password " + s.demoPassword)
	return nil
}

// demo lists the sandbox's communities and doctors with their binding codes.
func (s *Server) demo(c *gin.Context) {
	communities, err := s.DB.Communities(c.Request.Context())
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	doctors, err := s.DB.Doctors(c.Request.Context())
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	type doctorJSON struct {
		ID          int64  `json:"id"`
		Name        string `json:"name"`
		Team        string `json:"team"`
		BindingCode string `json:"binding_code"`
		Bound       bool   `json:"bound"`
	}
	out := []doctorJSON{}
	for _, d := range doctors {
		out = append(out, doctorJSON{ID: d.ID, Name: d.Name, Team: d.TeamName, BindingCode: s.demoCodes[d.ID], Bound: d.OpenID.Valid})
	}
	demo := gin.H{"region": s.Config.Region, "communities": communities, "doctors": out}
	if s.demoPassword != "" {
		account := gin.H{"username": demoAdminName, "password": s.demoPassword, "console": "/admin/"}
		// Once someone changed it in the console, the start-up password is no
		// longer the one: say so rather than hand out a wrong one.
		if staff, err := s.DB.StaffByUsername(c.Request.Context(), demoAdminName); err != nil ||
			!admin.VerifyPassword(staff.PasswordHash, s.demoPassword) {
			account["password"], account["note"] = nil, "changed in the console since start; a restart sets it back"
		}
		demo["admin"] = account
	}
	c.JSON(http.StatusOK, demo)
}
