package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Institution is a township health centre or a community health service centre.
type Institution struct {
	ID    int64  `db:"id" json:"id"`
	Code  string `db:"code" json:"code"` // what operators type, e.g. the centre's short name in pinyin
	Name  string `db:"name" json:"name"`
	Kind  string `db:"kind" json:"kind"` // township_centre, community_centre
	Phone string `db:"phone" json:"phone"`
	// Demo marks the sandbox's demo organisation (see RemoveDemo).
	Demo bool `db:"demo" json:"-"`
}

// Community is a village or neighbourhood an institution serves.
type Community struct {
	ID            int64  `db:"id" json:"id"`
	InstitutionID int64  `db:"institution_id" json:"institution_id"`
	Town          string `db:"town" json:"town"`
	Name          string `db:"name" json:"name"`
}

// Doctor is a family doctor who can lead a team and bind their WeChat.
type Doctor struct {
	ID            int64          `db:"id"`
	InstitutionID int64          `db:"institution_id"`
	Name          string         `db:"name"`
	Title         string         `db:"title"`
	OpenID        sql.NullString `db:"openid"`
}

// Member is one person of a team besides its doctor.
type Member struct {
	Role string `db:"role" json:"role"`
	Name string `db:"name" json:"name"`
}

// Team is a family-doctor team.
type Team struct {
	ID            int64  `db:"id"`
	InstitutionID int64  `db:"institution_id"`
	Name          string `db:"name"`
	DoctorID      int64  `db:"doctor_id"`
	DoctorName    string `db:"doctor_name"`
	Members       []Member
}

// NewTeam is a team to create, with its doctor, members and the communities
// it serves (indexes into the communities created with it).
type NewTeam struct {
	Name        string
	Doctor      Doctor
	Members     []Member
	Communities []int
}

// HasOrganisation reports whether any institution exists yet.
func (db *DB) HasOrganisation(ctx context.Context) (bool, error) {
	n, err := db.InstitutionCount(ctx)
	return n > 0, err
}

// CreateInstitution adds an institution with its communities and teams in
// one transaction, returning the new communities' IDs in order. Teams name
// their communities by index into the communities given.
func (db *DB) CreateInstitution(ctx context.Context, in Institution, communities []Community, teams []NewTeam) ([]int64, error) {
	const op = "CreateInstitution"
	var ids []int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		ids = nil
		insert := func(what, q string, args ...any) (int64, error) {
			var id int64
			err := tx.get(ctx, op+what, &id, q+" RETURNING id", args...)
			return id, err
		}
		if in.Code == "" {
			return fail(op, errors.New("an institution needs a code"))
		}
		instID, err := insert("", `INSERT INTO institutions (code, name, kind, phone, demo) VALUES (?, ?, ?, ?, ?)`,
			in.Code, in.Name, in.Kind, in.Phone, in.Demo)
		if isUniqueViolation(err) {
			return fail(op, fmt.Errorf("institution code %q: %w", in.Code, ErrExists))
		}
		if err != nil {
			return err
		}
		for _, c := range communities {
			id, err := insert(": community "+c.Name, `INSERT INTO communities (institution_id, town, name) VALUES (?, ?, ?)`,
				instID, c.Town, c.Name)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		for _, t := range teams {
			docID, err := insert(": doctor "+t.Doctor.Name, `INSERT INTO doctors (institution_id, name, title) VALUES (?, ?, ?)`,
				instID, t.Doctor.Name, t.Doctor.Title)
			if err != nil {
				return err
			}
			var served []int64
			for _, ci := range t.Communities {
				if ci < 0 || ci >= len(ids) {
					return fail(op, fmt.Errorf("team %s serves community %d of %d", t.Name, ci, len(ids)))
				}
				served = append(served, ids[ci])
			}
			if _, err := tx.insertTeam(ctx, op, instID, t, docID, served); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Communities lists every community in ID order.
func (db *DB) Communities(ctx context.Context) ([]Community, error) {
	var out []Community
	if err := db.sel(ctx, "Communities", &out, `SELECT id, institution_id, town, name FROM communities ORDER BY id`); err != nil {
		return nil, err
	}
	return out, nil
}

// TeamsServing lists the teams that serve a community, with their members.
func (db *DB) TeamsServing(ctx context.Context, communityID int64) ([]Team, error) {
	const op = "TeamsServing"
	var teams []Team
	if err := db.sel(ctx, op, &teams, `SELECT t.id, t.institution_id, t.name, t.doctor_id, d.name AS doctor_name
		FROM teams t JOIN team_communities tc ON tc.team_id = t.id JOIN doctors d ON d.id = t.doctor_id
		WHERE tc.community_id = ? ORDER BY t.id`, communityID); err != nil {
		return nil, err
	}
	if len(teams) == 0 {
		return teams, nil
	}
	ids := make([]int64, len(teams))
	for i, t := range teams {
		ids[i] = t.ID
	}
	members, err := db.membersOf(ctx, op, ids)
	if err != nil {
		return nil, err
	}
	for i, t := range teams {
		teams[i].Members = members[t.ID]
	}
	return teams, nil
}

// membersOf reads the members of the given teams, in their order.
func (db *DB) membersOf(ctx context.Context, op string, teamIDs []int64) (map[int64][]Member, error) {
	var rows []struct {
		TeamID int64 `db:"team_id"`
		Member
	}
	if err := db.selIn(ctx, op+": members", &rows, `SELECT team_id, role, name FROM team_members
		WHERE team_id IN (?) ORDER BY team_id, sort_order`, teamIDs); err != nil {
		return nil, err
	}
	out := map[int64][]Member{}
	for _, r := range rows {
		out[r.TeamID] = append(out[r.TeamID], r.Member)
	}
	return out, nil
}

// DoctorWithTeam is a doctor and the team they lead.
type DoctorWithTeam struct {
	Doctor
	TeamID   int64  `db:"team_id"`
	TeamName string `db:"team_name"`
}

// Doctors lists doctors with the team each leads, in ID order.
func (db *DB) Doctors(ctx context.Context) ([]DoctorWithTeam, error) {
	var out []DoctorWithTeam
	if err := db.sel(ctx, "Doctors", &out, `SELECT d.id, d.institution_id, d.name, d.title, d.openid,
		t.id AS team_id, t.name AS team_name FROM doctors d JOIN teams t ON t.doctor_id = d.id ORDER BY d.id, t.id`); err != nil {
		return nil, err
	}
	return out, nil
}

// SetSandbox tells this DB, and every copy of it scoped to a transaction,
// whether this process runs in sandbox mode; unset, it does not. A binding
// code records the mode it was issued in, and outside a sandbox only codes
// issued outside one bind: the codes a sandbox hands out at /sandbox/demo
// must bind nobody once the same database serves real WeChat users.
func (db *DB) SetSandbox(on bool) { db.shared.sandbox.Store(on) }

// SetBindingCode gives an unbound doctor a new single-use binding code
// (its keyed hash) that expires at the given time, replacing any earlier one.
func (db *DB) SetBindingCode(ctx context.Context, doctorID int64, codeHash string, expires time.Time) error {
	const op = "SetBindingCode"
	n, err := db.exec(ctx, op, `UPDATE doctors SET binding_code_hash = ?, binding_expires_at = ?, binding_production = ?
		WHERE id = ? AND openid IS NULL`, codeHash, expires.UTC(), !db.shared.sandbox.Load(), doctorID)
	if err != nil {
		return err
	}
	if n == 0 {
		return fail(op, fmt.Errorf("doctor %d unknown or already bound: %w", doctorID, ErrNotFound))
	}
	return nil
}

// ErrCodeInvalid says a binding code is unknown, used or expired, or was
// issued in sandbox mode and is used outside it.
var ErrCodeInvalid = errors.New("binding code unknown, used or expired")

// BindDoctor binds a WeChat user to the doctor holding this code, if the code
// is valid at now (outside a sandbox: and was issued outside one), and
// spends the code. What waited in the outbox for the doctor to bind is made
// due now.
func (db *DB) BindDoctor(ctx context.Context, codeHash, openID string, now time.Time) (Doctor, error) {
	const op = "BindDoctor"
	var d Doctor
	err := db.inTx(ctx, op, func(tx *DB) error {
		var row struct {
			Doctor
			Expires    time.Time `db:"binding_expires_at"`
			Production bool      `db:"binding_production"`
		}
		err := tx.get(ctx, op, &row, `SELECT id, institution_id, name, title, openid, binding_expires_at, binding_production
		FROM doctors WHERE binding_code_hash = ? AND openid IS NULL`, codeHash)
		if errors.Is(err, ErrNotFound) {
			return fail(op, ErrCodeInvalid)
		}
		if err != nil {
			return err
		}
		// A sandbox code is refused as an unknown one is: whoever holds it
		// learns nothing about the doctor it was for.
		if !now.Before(row.Expires) || (!row.Production && !tx.shared.sandbox.Load()) {
			return fail(op, ErrCodeInvalid)
		}
		d = row.Doctor
		if _, err := tx.exec(ctx, op, `UPDATE doctors SET openid = ?, bound_at = ?, binding_code_hash = NULL,
		binding_expires_at = NULL WHERE id = ?`, openID, now.UTC(), d.ID); err != nil {
			if isUniqueViolation(err) {
				return fail(op, fmt.Errorf("this WeChat is bound to another doctor: %w", ErrCodeInvalid))
			}
			return err
		}
		// What waited for this doctor to bind goes out now.
		n, err := tx.exec(ctx, op, `UPDATE outbox SET due_at = ? WHERE recipient = ? AND state = 'pending'`,
			now.UTC(), fmt.Sprintf("doctor:%d", d.ID))
		tx.pushed(n)
		return err
	})
	if err != nil {
		return Doctor{}, err
	}
	d.OpenID = sql.NullString{String: openID, Valid: true}
	if db.tx != nil {
		db.tx.newDoctor.Store(true)
	} else {
		db.shared.doctorNames.forget()
	}
	return d, nil
}

// doctorNamesFresh is how long the bound doctors' names are kept before
// they are read again.
const doctorNamesFresh = 5 * time.Second

// doctorNames is every bound doctor's name by openid, as last read.
type doctorNames struct {
	mu    sync.Mutex
	read  time.Time // zero: read again at the next call
	names map[string]string
}

func (n *doctorNames) forget() {
	n.mu.Lock()
	n.read = time.Time{}
	n.mu.Unlock()
}

// BoundDoctorName is the name of the doctor bound to openID, from every
// bound doctor's name kept in memory and read again after 5 s: 帮助 needs
// it from everyone who sends it, and a burst of residents then costs no
// query each. A binding on this instance is seen at once, one on another
// instance within 5 s. It is for words only (which help to show): what
// a doctor may do is decided on DoctorByOpenID.
func (db *DB) BoundDoctorName(ctx context.Context, openID string) (string, bool, error) {
	n := &db.shared.doctorNames
	n.mu.Lock()
	defer n.mu.Unlock()
	if now := db.now(); n.names == nil || now.Sub(n.read) >= doctorNamesFresh || now.Before(n.read) {
		var rows []struct {
			OpenID string `db:"openid"`
			Name   string `db:"name"`
		}
		if err := db.unbegun().sel(ctx, "BoundDoctorName", &rows, `SELECT openid, name FROM doctors WHERE openid IS NOT NULL`); err != nil {
			return "", false, err
		}
		n.names = make(map[string]string, len(rows))
		for _, r := range rows {
			n.names[r.OpenID] = r.Name
		}
		n.read = now
	}
	name, ok := n.names[openID]
	return name, ok, nil
}

// BindingFailures returns how many wrong binding codes a user sent on a day.
func (db *DB) BindingFailures(ctx context.Context, openID, day string) (int, error) {
	var n int
	err := db.get(ctx, "BindingFailures", &n, `SELECT count FROM binding_failures WHERE openid = ? AND day = ?`, openID, day)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// AddBindingFailure counts one more wrong binding code.
func (db *DB) AddBindingFailure(ctx context.Context, openID, day string) error {
	_, err := db.exec(ctx, "AddBindingFailure", `INSERT INTO binding_failures (openid, day, count) VALUES (?, ?, 1)
		ON CONFLICT (openid, day) DO UPDATE SET count = binding_failures.count + 1`, openID, day)
	return err
}

// DoctorOpenID is the WeChat a doctor bound, if any.
func (db *DB) DoctorOpenID(ctx context.Context, doctorID int64) (string, bool, error) {
	var openID sql.NullString
	if err := db.get(ctx, "DoctorOpenID", &openID, `SELECT openid FROM doctors WHERE id = ?`, doctorID); err != nil {
		return "", false, err
	}
	return openID.String, openID.Valid, nil
}

// InstitutionCount counts the deployment's institutions.
func (db *DB) InstitutionCount(ctx context.Context) (int, error) {
	var n int
	err := db.get(ctx, "InstitutionCount", &n, `SELECT COUNT(*) FROM institutions`)
	return n, err
}

// CreateCommunity adds a community to an institution with its population.
func (db *DB) CreateCommunity(ctx context.Context, c Community, population int, actor string) (int64, error) {
	const op = "CreateCommunity"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		var same int
		if err := tx.get(ctx, op, &same, `SELECT COUNT(*) FROM communities WHERE institution_id = ? AND name = ?`,
			c.InstitutionID, c.Name); err != nil {
			return err
		}
		if same > 0 { // residents and imports find communities by name
			return fail(op, fmt.Errorf("community %s: %w", c.Name, ErrExists))
		}
		if err := tx.get(ctx, op, &id, `INSERT INTO communities (institution_id, town, name, residents) VALUES (?, ?, ?, ?)
			RETURNING id`, c.InstitutionID, c.Town, c.Name, population); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(c.InstitutionID), "community.create", c.Name, fmt.Sprintf("常住人口 %d", population))
	})
	return id, err
}

// CreateDoctor adds a doctor to an institution.
func (db *DB) CreateDoctor(ctx context.Context, d Doctor, actor string) (int64, error) {
	const op = "CreateDoctor"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		if err := tx.get(ctx, op, &id, `INSERT INTO doctors (institution_id, name, title) VALUES (?, ?, ?) RETURNING id`,
			d.InstitutionID, d.Name, d.Title); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(d.InstitutionID), "doctor.create", d.Name, d.Title)
	})
	return id, err
}

// CreateTeam adds a team led by one of the institution's doctors, serving
// some of its communities; a doctor or community of another institution is
// ErrNotFound.
func (db *DB) CreateTeam(ctx context.Context, institutionID int64, t NewTeam, doctorID int64, communityIDs []int64, actor string) (int64, error) {
	const op = "CreateTeam"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		scope := Scope{Institution: institutionID}
		if err := tx.Visible(ctx, scope, ThingDoctor, doctorID); err != nil {
			return err
		}
		var same int
		if err := tx.get(ctx, op, &same, `SELECT COUNT(*) FROM teams WHERE institution_id = ? AND name = ?`, institutionID, t.Name); err != nil {
			return err
		}
		if same > 0 { // imports and residents' files name teams
			return fail(op, fmt.Errorf("team %s: %w", t.Name, ErrExists))
		}
		for _, c := range communityIDs {
			if err := tx.Visible(ctx, scope, ThingCommunity, c); err != nil {
				return err
			}
		}
		var err error
		if id, err = tx.insertTeam(ctx, op, institutionID, t, doctorID, communityIDs); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(institutionID), "team.create", t.Name, fmt.Sprintf("服务社区 %d 个", len(communityIDs)))
	})
	return id, err
}

// Institutions lists every institution by code.
func (db *DB) Institutions(ctx context.Context) ([]Institution, error) {
	out := []Institution{}
	err := db.sel(ctx, "Institutions", &out, `SELECT id, code, name, kind, phone, demo FROM institutions ORDER BY code`)
	return out, err
}

// insertTeam writes a team with its members and the communities it serves.
func (db *DB) insertTeam(ctx context.Context, op string, institutionID int64, t NewTeam, doctorID int64, communityIDs []int64) (int64, error) {
	var id int64
	if err := db.get(ctx, op+": team "+t.Name, &id, `INSERT INTO teams (institution_id, name, doctor_id) VALUES (?, ?, ?)
		RETURNING id`, institutionID, t.Name, doctorID); err != nil {
		return 0, err
	}
	members := make([][]any, len(t.Members))
	for i, m := range t.Members {
		members[i] = []any{id, i, m.Role, m.Name}
	}
	if _, err := db.insertMany(ctx, op+": member", `INSERT INTO team_members (team_id, sort_order, role, name) VALUES`, "", members); err != nil {
		return 0, err
	}
	served := make([][]any, len(communityIDs))
	for i, c := range communityIDs {
		served[i] = []any{id, c}
	}
	_, err := db.insertMany(ctx, op+": community", `INSERT INTO team_communities (team_id, community_id) VALUES`, "", served)
	return id, err
}

// InstitutionByID finds an institution.
func (db *DB) InstitutionByID(ctx context.Context, id int64) (Institution, error) {
	var in Institution
	err := db.get(ctx, "InstitutionByID", &in, `SELECT id, code, name, kind, phone, demo FROM institutions WHERE id = ?`, id)
	return in, err
}

// DoctorName is a doctor's name.
func (db *DB) DoctorName(ctx context.Context, doctorID int64) (string, error) {
	var name string
	err := db.get(ctx, "DoctorName", &name, `SELECT name FROM doctors WHERE id = ?`, doctorID)
	return name, err
}

// DoctorInstitution is the institution a doctor belongs to.
func (db *DB) DoctorInstitution(ctx context.Context, doctorID int64) (int64, error) {
	var id int64
	err := db.get(ctx, "DoctorInstitution", &id, `SELECT institution_id FROM doctors WHERE id = ?`, doctorID)
	return id, err
}

// Opening says whether residents can sign yet: some community is served by
// a team (every team has its doctor). Phones are the institutions' phones,
// for residents who ask before then.
type Opening struct {
	ServedCommunities int
	Phones            []string
}

// Open reports whether the organisation is set up enough to sign residents.
func (o Opening) Open() bool { return o.ServedCommunities > 0 }

// SigningOpening reads whether residents can sign yet.
func (db *DB) SigningOpening(ctx context.Context) (Opening, error) {
	const op = "SigningOpening"
	var o Opening
	if err := db.get(ctx, op, &o.ServedCommunities, `SELECT COUNT(DISTINCT community_id) FROM team_communities`); err != nil {
		return o, err
	}
	o.Phones = []string{}
	err := db.sel(ctx, op, &o.Phones, `SELECT phone FROM institutions WHERE phone <> '' ORDER BY id LIMIT 3`)
	return o, err
}

// Place is a community and a team serving it, with the team's doctor.
type Place struct {
	CommunityID int64 `db:"community_id"`
	TeamID      int64 `db:"team_id"`
	DoctorID    int64 `db:"doctor_id"`
}

// FindCommunityTeam finds, in an institution, a community by name and a
// team by name that serves it.
func (db *DB) FindCommunityTeam(ctx context.Context, institutionID int64, community, team string) (Place, error) {
	var p Place
	err := db.get(ctx, "FindCommunityTeam", &p, `SELECT m.id AS community_id, t.id AS team_id, t.doctor_id
		FROM communities m JOIN team_communities tc ON tc.community_id = m.id JOIN teams t ON t.id = tc.team_id
		WHERE m.institution_id = ? AND m.name = ? AND t.name = ? ORDER BY m.id, t.id LIMIT 1`, institutionID, community, team)
	return p, err
}

// FindPlace finds a team that serves a community; ErrNotFound when it does not.
func (db *DB) FindPlace(ctx context.Context, communityID, teamID int64) (Place, error) {
	var p Place
	err := db.get(ctx, "FindPlace", &p, `SELECT tc.community_id, t.id AS team_id, t.doctor_id FROM team_communities tc
		JOIN teams t ON t.id = tc.team_id WHERE tc.community_id = ? AND tc.team_id = ?`, communityID, teamID)
	return p, err
}

// TeamServes counts the communities a team serves; a team handed over with
// "retire" serves none.
func (db *DB) TeamServes(ctx context.Context, teamID int64) (int, error) {
	var n int
	err := db.get(ctx, "TeamServes", &n, `SELECT COUNT(*) FROM team_communities WHERE team_id = ?`, teamID)
	return n, err
}

// TeamByID finds a team.
func (db *DB) TeamByID(ctx context.Context, id int64) (Team, error) {
	var t Team
	err := db.get(ctx, "TeamByID", &t, `SELECT t.id, t.institution_id, t.name, t.doctor_id, d.name AS doctor_name
		FROM teams t JOIN doctors d ON d.id = t.doctor_id WHERE t.id = ?`, id)
	return t, err
}

// DoctorQR is the URL a doctor's QR code encodes, "" until it is made.
func (db *DB) DoctorQR(ctx context.Context, doctorID int64) (string, error) {
	var url string
	err := db.get(ctx, "DoctorQR", &url, `SELECT qr_url FROM doctors WHERE id = ?`, doctorID)
	return url, err
}

// SetDoctorQR keeps the URL a doctor's QR code encodes, unless another
// request kept one first, and returns the URL kept: every poster printed
// shows the same code.
func (db *DB) SetDoctorQR(ctx context.Context, doctorID int64, url string) (string, error) {
	if _, err := db.exec(ctx, "SetDoctorQR", `UPDATE doctors SET qr_url = ? WHERE id = ? AND qr_url = ''`, url, doctorID); err != nil {
		return "", err
	}
	return db.DoctorQR(ctx, doctorID)
}
