package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Scope is the part of a deployment a staff member may see. The zero Scope
// is the whole deployment (city staff, the operator's token); Institution
// narrows it to one institution, and Doctor further to the residents,
// teams and visits of the teams that doctor leads.
//
// Every query that lists or looks up organisation or resident data for the
// console takes a Scope, and a row outside it is ErrNotFound: the caller
// answers 404 as if it did not exist.
type Scope struct {
	Institution int64
	Doctor      int64
}

// Whole reports whether the scope is the whole deployment.
func (s Scope) Whole() bool { return s.Institution == 0 }

// where is the SQL condition (with its arguments) that keeps a row in scope:
// inst is the row's institution column; doctor is the condition, with one
// '?' for the doctor's ID, that a row of a doctor's own teams meets ("" where
// a doctor sees what their institution's staff see). The condition always
// holds for the whole deployment, so callers AND it in unconditionally.
func (s Scope) where(inst, doctor string) (string, []any) {
	cond, args := "1 = 1", []any{}
	if s.Institution != 0 {
		cond, args = fmt.Sprintf("%s = ?", inst), append(args, s.Institution)
	}
	if s.Doctor != 0 && doctor != "" {
		cond = fmt.Sprintf("%s AND %s", cond, doctor)
		for range strings.Count(doctor, "?") {
			args = append(args, s.Doctor)
		}
	}
	return cond, args
}

// andEq narrows a condition to rows whose column holds id, when id is set.
func andEq(cond string, args []any, column string, id int64) (string, []any) {
	if id == 0 {
		return cond, args
	}
	return cond + " AND " + column + " = ?", append(args, id)
}

// Thing is a kind of row the console names by ID.
type Thing string

const (
	ThingInstitution Thing = "institution"
	ThingDoctor      Thing = "doctor"
	ThingTeam        Thing = "team"
	ThingCommunity   Thing = "community"
	ThingResident    Thing = "resident"
	ThingContract    Thing = "contract"    // named by its number
	ThingTeamChange  Thing = "team change" // a contract's 改签 waiting, named by its number; the new team's scope
	ThingAppointment Thing = "appointment"
)

// visibility says how to find a thing and what puts it in a scope.
var visibility = map[Thing]struct{ from, inst, doctor string }{
	ThingInstitution: {`institutions i WHERE i.id = ?`, "i.id", ""},
	ThingDoctor:      {`doctors d WHERE d.id = ?`, "d.institution_id", "d.id = ?"},
	ThingTeam:        {`teams t WHERE t.id = ?`, "t.institution_id", "t.doctor_id = ?"},
	ThingCommunity:   {`communities m WHERE m.id = ?`, "m.institution_id", ""},
	ThingResident:    {`residents r JOIN communities m ON m.id = r.community_id WHERE r.id = ?`, "m.institution_id", residentOfDoctor},
	ThingContract:    {`contracts c JOIN teams t ON t.id = c.team_id WHERE c.number = ?`, "t.institution_id", "c.doctor_id = ?"},
	ThingTeamChange:  {`contracts c JOIN teams ct ON ct.id = c.change_team_id WHERE c.number = ?`, "ct.institution_id", "c.change_doctor_id = ?"},
	ThingAppointment: {`appointments a JOIN doctors d ON d.id = a.doctor_id WHERE a.id = ?`, "d.institution_id", "a.doctor_id = ?"},
}

// residentOfDoctor is met by a resident (r) whose live contract is with the
// doctor, or waits to move to them: a doctor sees the residents they serve
// now, not those who have left them.
const residentOfDoctor = `EXISTS (SELECT 1 FROM contracts rc WHERE rc.resident_id = r.id AND rc.status IN ('pending', 'active')
	AND (rc.doctor_id = ? OR rc.change_doctor_id = ?))`

// Visible returns nil when the thing exists inside the scope and
// ErrNotFound when it does not exist or lies outside: the two look the same
// to the caller, so IDs of another institution reveal nothing.
func (db *DB) Visible(ctx context.Context, scope Scope, what Thing, key any) error {
	v, ok := visibility[what]
	if !ok {
		return fail("Visible", fmt.Errorf("unknown thing %q", what))
	}
	cond, args := scope.where(v.inst, v.doctor)
	var one int
	return db.get(ctx, "Visible: "+string(what), &one, `SELECT 1 FROM `+v.from+` AND `+cond, append([]any{key}, args...)...)
}

// Page is one page of a listing.
type Page struct {
	Limit  int
	Offset int
}

// clamp keeps a page within 1 to 500 rows.
func (p Page) clamp() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, 500)
	p.Offset = max(p.Offset, 0)
	return p
}

// nullID is an ID column's value, NULL for zero.
func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// InstitutionOf is the institution a thing belongs to, for audit entries
// made by city staff.
func (db *DB) InstitutionOf(ctx context.Context, what Thing, key any) (int64, error) {
	v, ok := visibility[what]
	if !ok {
		return 0, fail("InstitutionOf", fmt.Errorf("unknown thing %q", what))
	}
	var id int64
	err := db.get(ctx, "InstitutionOf", &id, `SELECT `+v.inst+` FROM `+v.from, key)
	return id, err
}
