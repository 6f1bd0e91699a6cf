package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rows a signing writes, shared by CreateContract's statement-a-table
// path and insertSigning's one statement. The group tags, events and
// notification use the inserts other writes use too (groupsInsert,
// eventsInsert, outboxInsert).
const (
	residentInsert = `INSERT INTO residents (manager_openid, relation, name, id_number_sealed,
		id_number_hash, phone_sealed, phone_hash, birth_date, sex, community_id, priority_groups, id_masked, phone_masked,
		family_relation, due_date_sealed, created_at, updated_at, groups_indexed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`
	packagesInsert = `INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split) VALUES`
)

func residentArgs(r NewResident, now time.Time) []any {
	return []any{r.ManagerOpenID, r.Relation, r.Name, r.IDSealed, r.IDHash, r.PhoneSealed, r.PhoneHash, r.BirthDate, r.Sex,
		r.CommunityID, r.GroupsSealed, r.IDMasked, r.PhoneMasked, r.FamilyRelation, r.DueDateSealed, now, now}
}

// contractInsert inserts a contract whose resident_id is the SQL resident
// (a placeholder, or a subquery).
func contractInsert(resident string) string {
	return `INSERT INTO contracts (resident_id, number, request_key, team_id, doctor_id, status,
		insured, term_months, term_end, partner_district, partner_tertiary, agreement_version, agreed_at, consent_version,
		consented_at, consent_by, created_at, confirmed_at, member_code_hash, member_code_expires)
		VALUES (` + resident + `, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
}

// contractArgs are contractInsert's arguments after the resident.
func contractArgs(nc NewContract, number string, now time.Time) []any {
	var termEnd sql.NullString
	var confirmed, codeExpires sql.NullTime
	if nc.Active { // signed on paper: in force from its signing day
		termEnd = sql.NullString{String: nc.TermEnd, Valid: true}
		confirmed = sql.NullTime{Time: nc.AgreedAt.UTC(), Valid: true}
	}
	if nc.MemberCode != "" {
		codeExpires = sql.NullTime{Time: nc.MemberCodeExpires.UTC(), Valid: true}
	}
	return []any{number, nc.RequestKey, nc.TeamID, nc.DoctorID, contractStatus(nc), string(nc.Insured), nc.TermMonths, termEnd,
		nc.PartnerDistrict, nc.PartnerTertiary, nc.AgreementVersion, nc.AgreedAt.UTC(), nc.ConsentVersion,
		nc.ConsentedAt.UTC(), nc.ConsentBy, now, confirmed, nc.MemberCode, codeExpires}
}

func contractStatus(nc NewContract) string {
	if nc.Active {
		return ContractActive
	}
	return ContractPending
}

func contractEvent(nc NewContract) string { return cmp.Or(nc.Event, "signed in chat") }

// packageRows are a contract's packages without its id.
func packageRows(packages []ContractPackage) [][]any {
	rows := make([][]any, len(packages))
	for i, p := range packages {
		split, _ := json.Marshal(p.Split)
		rows[i] = []any{p.Code, p.Name, p.Kind, string(split)}
	}
	return rows
}

// tagRows are a resident's priority-group tags, once each, without its id.
func tagRows(tags []string) [][]any {
	var rows [][]any
	for _, t := range slices.Compact(slices.Sorted(slices.Values(tags))) {
		rows = append(rows, []any{t})
	}
	return rows
}

// withID puts id first in every row.
func withID(id int64, rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = append([]any{id}, r...)
	}
	return out
}

// insertSigning writes a new resident's signing (PostgreSQL) in one
// statement: the resident and their group tags, the contract, its packages
// and first event, and the doctor's notification, each insert taking the
// ids the one before returned. What signKnown writes a table a
// statement costs one round trip. A unique violation is returned as it
// is.
func (db *DB) insertSigning(ctx context.Context, op string, nc NewContract, number string, now time.Time) error {
	var q strings.Builder
	q.WriteString("WITH r AS (" + residentInsert + " RETURNING id)")
	args := residentArgs(nc.Resident, now)
	if tags := tagRows(nc.Resident.GroupTags); len(tags) > 0 {
		q.WriteString(", g AS (" + groupsInsert)
		args = appendValues(&q, "(SELECT id FROM r)", tags, args)
		q.WriteString(")")
	}
	q.WriteString(", c AS (" + contractInsert("(SELECT id FROM r)") + " RETURNING id)")
	args = append(args, contractArgs(nc, number, now)...)
	if packages := packageRows(nc.Packages); len(packages) > 0 {
		q.WriteString(", p AS (" + packagesInsert)
		args = appendValues(&q, "(SELECT id FROM c)", packages, args)
		q.WriteString(")")
	}
	q.WriteString(", e AS (" + eventsInsert)
	args = appendValues(&q, "(SELECT id FROM c)", [][]any{{now, nc.ConsentBy, "", contractStatus(nc), contractEvent(nc)}}, args)
	q.WriteString(")")
	notify := nc.Notify != nil && nc.MemberCode == ""
	if notify {
		p := nc.Notify(number)
		row, err := pushRow(p, now)
		if err != nil {
			return fail(op, fmt.Errorf("enqueue %s: %w", p.Key, err))
		}
		q.WriteString(", o AS (" + outboxInsert)
		args = appendValues(&q, "", [][]any{row}, args)
		q.WriteString(" " + outboxConflict + " RETURNING 1)")
	}
	q.WriteString(" SELECT ")
	if notify {
		q.WriteString("(SELECT COUNT(*) FROM o)")
	} else {
		q.WriteString("0")
	}
	var pushes int64
	if err := db.get(ctx, op, &pushes, q.String(), args...); err != nil {
		return err
	}
	db.pushed(pushes)
	return nil
}

// appendValues writes " (first, ?, …), …" for rows (first left out when
// ""), and returns args with the rows' values appended.
func appendValues(q *strings.Builder, first string, rows [][]any, args []any) []any {
	for i, r := range rows {
		if i > 0 {
			q.WriteString(",")
		}
		q.WriteString(" (")
		if first != "" {
			q.WriteString(first)
			if len(r) > 0 {
				q.WriteString(", ")
			}
		}
		q.WriteString(strings.TrimSuffix(strings.Repeat("?, ", len(r)), ", "))
		q.WriteString(")")
		args = append(args, r...)
	}
	return args
}
