package flows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// TeamRoles are the roles of the programme's team model (1+1+X and the
// like, from the profile), in the profile's order; none before a profile is
// loaded, when any role is taken.
func TeamRoles(ctx context.Context, db *storage.DB) ([]string, error) {
	s, err := Settings(ctx, db)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return s.TeamModel.Roles, err
}

// CheckMembers refuses a team member without a name or in a role the team
// model does not have.
func CheckMembers(roles []string, members []storage.Member) error {
	for _, m := range members {
		if strings.TrimSpace(m.Name) == "" {
			return &Refusal{Reason: "每位成员须写明姓名"}
		}
		if len(roles) > 0 && !slices.Contains(roles, m.Role) {
			return &Refusal{Reason: fmt.Sprintf("成员角色“%s”不在本地区的团队组成（%s）中", m.Role, strings.Join(roles, "、"))}
		}
	}
	return nil
}
