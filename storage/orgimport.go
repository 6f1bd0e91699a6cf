package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// OrgImport is an organisation read from a file, row by row: institutions
// by code, and their communities, doctors and teams by name. Rows refer to
// one another by those names, or to what the database already holds.
type OrgImport struct {
	Institutions []ImportRow[Institution]
	Communities  []ImportRow[ImportCommunity]
	Doctors      []ImportRow[ImportDoctor]
	Teams        []ImportRow[ImportTeam]
}

// ImportRow is one row of a file and the line it came from.
type ImportRow[T any] struct {
	Line int
	Row  T
}

// ImportCommunity is a community of the institution with Code.
type ImportCommunity struct {
	Institution    string // code
	Town, Name     string
	Population     int
	PriorityCounts PriorityCounts // nil: kept as it is
	CountedOn      string
}

// ImportDoctor is a doctor of the institution with Code.
type ImportDoctor struct {
	Institution string
	Name, Title string
}

// ImportTeam is a team, its lead doctor and the communities it serves, by name.
type ImportTeam struct {
	Institution string
	Name        string
	Doctor      string
	Communities []string
	Members     []Member
}

// ImportLine says what importing one row did (or, in a dry run, would do).
type ImportLine struct {
	Line   int    `json:"line"`
	Action string `json:"action"` // create, update, unchanged, rejected
	What   string `json:"what"`
}

// ErrImportRejected says some rows were rejected, so nothing was written.
var ErrImportRejected = errors.New("rows were rejected; nothing was written")

// errDryRun rolls back a dry run after it did everything a real one does.
var errDryRun = errors.New("dry run")

// ImportOrganisation writes an organisation in one transaction, creating
// what is missing and updating what exists (an institution's name, kind and
// phone; a community's town and population; a doctor's title). A dry run
// does the same work and rolls it back, so it reports exactly what a real
// import would do. With any row rejected nothing is written and the error
// is ErrImportRejected; the report says why for each row.
func (db *DB) ImportOrganisation(ctx context.Context, in OrgImport, dryRun bool, actor string) ([]ImportLine, error) {
	const op = "ImportOrganisation"
	var report []ImportLine
	err := db.inTx(ctx, op, func(tx *DB) error {
		report = nil
		imp := &orgImporter{tx: tx, ctx: ctx, op: op, actor: actor}
		imp.institutions(in.Institutions)
		imp.communities(in.Communities)
		imp.doctors(in.Doctors)
		imp.teams(in.Teams)
		report = imp.report
		switch {
		case imp.err != nil:
			return imp.err
		case imp.rejected:
			return ErrImportRejected
		case dryRun:
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if errors.Is(err, ErrImportRejected) {
		err = ErrImportRejected
	}
	return report, err
}

type orgImporter struct {
	tx       *DB
	ctx      context.Context
	op       string
	actor    string
	report   []ImportLine
	rejected bool
	err      error // a database failure: stops the import
}

func (m *orgImporter) say(line int, action, format string, args ...any) {
	m.report = append(m.report, ImportLine{Line: line, Action: action, What: fmt.Sprintf(format, args...)})
	if action == "rejected" {
		m.rejected = true
	}
}

// lookup finds one ID by a natural key; found is false for none, and more
// than one is a rejection the caller words.
func (m *orgImporter) lookup(q string, args ...any) (id int64, found, ambiguous bool) {
	if m.err != nil {
		return 0, false, false
	}
	var ids []int64
	if err := m.tx.sel(m.ctx, m.op, &ids, q, args...); err != nil {
		m.err = err
	}
	return first(ids), len(ids) > 0, len(ids) > 1
}

func first(ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

func (m *orgImporter) institution(line int, code string) (int64, bool) {
	id, found, _ := m.lookup(`SELECT id FROM institutions WHERE code = ?`, code)
	if !found && m.err == nil {
		m.say(line, "rejected", "文件和数据库中都没有机构代码 %s", code)
	}
	return id, found
}

func (m *orgImporter) institutions(rows []ImportRow[Institution]) {
	for _, r := range rows {
		in := r.Row
		id, found, _ := m.lookup(`SELECT id FROM institutions WHERE code = ?`, in.Code)
		if m.err != nil {
			return
		}
		if found {
			_, m.err = m.tx.exec(m.ctx, m.op, `UPDATE institutions SET name = ?, kind = ?, phone = ? WHERE id = ?`, in.Name, in.Kind, in.Phone, id)
			m.say(r.Line, "update", "机构 %s %s", in.Code, in.Name)
			continue
		}
		m.err = m.tx.get(m.ctx, m.op, &id, `INSERT INTO institutions (code, name, kind, phone) VALUES (?, ?, ?, ?) RETURNING id`,
			in.Code, in.Name, in.Kind, in.Phone)
		if m.err == nil {
			m.err = m.tx.auditIn(m.ctx, m.op, m.actor, nullID(id), "institution.import", in.Code, in.Name)
		}
		m.say(r.Line, "create", "机构 %s %s", in.Code, in.Name)
	}
}

func (m *orgImporter) communities(rows []ImportRow[ImportCommunity]) {
	for _, r := range rows {
		c := r.Row
		inst, ok := m.institution(r.Line, c.Institution)
		if !ok {
			continue
		}
		id, found, ambiguous := m.lookup(`SELECT id FROM communities WHERE institution_id = ? AND name = ?`, inst, c.Name)
		switch {
		case m.err != nil:
			return
		case ambiguous:
			m.say(r.Line, "rejected", "机构 %[2]s 已有多个名为 %[1]s 的社区", c.Name, c.Institution)
		case found:
			_, m.err = m.tx.exec(m.ctx, m.op, `UPDATE communities SET town = ?, residents = ? WHERE id = ?`, c.Town, c.Population, id)
			m.say(r.Line, "update", "社区 %s（%s），常住人口 %d", c.Name, c.Town, c.Population)
		default:
			id, m.err = m.tx.CreateCommunity(m.ctx, Community{InstitutionID: inst, Town: c.Town, Name: c.Name}, c.Population, m.actor)
			m.say(r.Line, "create", "社区 %s（%s），常住人口 %d", c.Name, c.Town, c.Population)
		}
		if c.PriorityCounts != nil && m.err == nil {
			raw, _ := json.Marshal(c.PriorityCounts)
			_, m.err = m.tx.exec(m.ctx, m.op, `UPDATE communities SET priority_counts = ?, counted_on = ? WHERE id = ?`,
				string(raw), c.CountedOn, id)
		}
	}
}

func (m *orgImporter) doctors(rows []ImportRow[ImportDoctor]) {
	for _, r := range rows {
		d := r.Row
		inst, ok := m.institution(r.Line, d.Institution)
		if !ok {
			continue
		}
		id, found, ambiguous := m.lookup(`SELECT id FROM doctors WHERE institution_id = ? AND name = ?`, inst, d.Name)
		switch {
		case m.err != nil:
			return
		case ambiguous:
			m.say(r.Line, "rejected", "机构 %[2]s 已有多个名为 %[1]s 的医生，请在管理后台处理", d.Name, d.Institution)
		case found:
			_, m.err = m.tx.exec(m.ctx, m.op, `UPDATE doctors SET title = ? WHERE id = ?`, d.Title, id)
			m.say(r.Line, "update", "医生 %s %s", d.Name, d.Title)
		default:
			_, m.err = m.tx.CreateDoctor(m.ctx, Doctor{InstitutionID: inst, Name: d.Name, Title: d.Title}, m.actor)
			m.say(r.Line, "create", "医生 %s %s", d.Name, d.Title)
		}
	}
}

func (m *orgImporter) teams(rows []ImportRow[ImportTeam]) {
	for _, r := range rows {
		t := r.Row
		inst, ok := m.institution(r.Line, t.Institution)
		if !ok {
			continue
		}
		if _, found, _ := m.lookup(`SELECT id FROM teams WHERE institution_id = ? AND name = ?`, inst, t.Name); found || m.err != nil {
			if m.err == nil {
				m.say(r.Line, "unchanged", "团队 %s 已存在，如需修改请在管理后台操作", t.Name)
			}
			continue
		}
		doctor, found, ambiguous := m.lookup(`SELECT id FROM doctors WHERE institution_id = ? AND name = ?`, inst, t.Doctor)
		if !found || ambiguous {
			if m.err == nil {
				m.say(r.Line, "rejected", "团队 %s：负责医生“%s”不是机构 %s 的（唯一）医生", t.Name, t.Doctor, t.Institution)
			}
			continue
		}
		var served []int64
		for _, name := range t.Communities {
			id, found, ambiguous := m.lookup(`SELECT id FROM communities WHERE institution_id = ? AND name = ?`, inst, name)
			if !found || ambiguous {
				if m.err == nil {
					m.say(r.Line, "rejected", "团队 %s：服务社区“%s”不是机构 %s 的（唯一）社区", t.Name, name, t.Institution)
				}
				served = nil
				break
			}
			served = append(served, id)
		}
		if served == nil || m.err != nil {
			continue
		}
		_, m.err = m.tx.CreateTeam(m.ctx, inst, NewTeam{Name: t.Name, Members: t.Members}, doctor, served, m.actor)
		m.say(r.Line, "create", "团队 %s，负责医生 %s，服务 %s", t.Name, t.Doctor, strings.Join(t.Communities, "、"))
	}
}
