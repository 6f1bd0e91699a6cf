package bot

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
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
	c.JSON(http.StatusOK, gin.H{"region": s.Config.Region, "communities": communities, "doctors": out})
}
