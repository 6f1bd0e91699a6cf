package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestStaffAccounts(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		inst, err := db.InstitutionByCode(ctx, "shili")
		if err != nil || inst.Name != "示例卫生院" {
			t.Fatalf("institution by code: %+v, %v", inst, err)
		}
		if _, err := db.InstitutionByCode(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
		_, err = db.CreateInstitution(ctx, storage.Institution{Code: "qita", Name: "其他卫生院", Kind: "township_centre"},
			[]storage.Community{{Town: "镇", Name: "村"}}, []storage.NewTeam{{Name: "赵医生团队", Doctor: storage.Doctor{Name: "赵医生"}, Communities: []int{0}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateInstitution(ctx, storage.Institution{Code: "qita", Name: "重名", Kind: "township_centre"}, nil, nil); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("a second institution with the same code: %v", err)
		}
		in := sql.NullInt64{Int64: inst.ID, Valid: true}
		admin := storage.Staff{Username: "wang", Role: storage.RoleAdmin, InstitutionID: in, PasswordHash: "h1"}
		adminID, err := db.CreateStaff(ctx, admin, "operator")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateStaff(ctx, admin, "operator"); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("same user name twice: %v", err)
		}
		if _, err := db.CreateStaff(ctx, storage.Staff{Username: "nobody", Role: storage.RoleAdmin, PasswordHash: "h"}, "operator"); err == nil {
			t.Fatal("an admin without an institution was created")
		}
		docs, _ := db.Doctors(ctx)
		var foreignDoctor int64
		for _, d := range docs {
			if d.InstitutionID != inst.ID {
				foreignDoctor = d.ID
			}
		}
		if _, err := db.CreateStaff(ctx, storage.Staff{Username: "zhao", Role: storage.RoleDoctor, InstitutionID: in,
			DoctorID: sql.NullInt64{Int64: foreignDoctor, Valid: true}, PasswordHash: "h"}, "operator"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a doctor account for another institution's doctor: %v", err)
		}
		if _, err := db.CreateStaff(ctx, storage.Staff{Username: "city", Role: storage.RoleCity, PasswordHash: "h"}, "operator"); err != nil {
			t.Fatal(err)
		}

		got, err := db.StaffByUsername(ctx, "wang")
		if err != nil || got.ID != adminID || got.Role != storage.RoleAdmin || got.PasswordVersion != 1 || got.Scope() != (storage.Scope{Institution: inst.ID}) {
			t.Fatalf("by user name: %+v, %v", got, err)
		}
		foreign := storage.Scope{Institution: inst.ID + 1000}
		if _, err := db.StaffByID(ctx, foreign, adminID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("another institution's account: %v", err)
		}
		mine, total, err := db.ListStaff(ctx, got.Scope(), storage.Page{})
		if err != nil || total != 1 || len(mine) != 1 || mine[0].Username != "wang" {
			t.Fatalf("the institution's staff: %+v, %d, %v", mine, total, err)
		}
		if _, total, _ := db.ListStaff(ctx, storage.Scope{}, storage.Page{}); total != 2 {
			t.Fatalf("every account: %d", total)
		}

		if err := db.SetStaffPassword(ctx, got.Scope(), adminID, "h2", "wang"); err != nil {
			t.Fatal(err)
		}
		if s, _ := db.StaffByUsername(ctx, "wang"); s.PasswordHash != "h2" || s.PasswordVersion != 2 {
			t.Fatalf("after a password change: %+v", s)
		}
		if err := db.SetStaffPassword(ctx, foreign, adminID, "h3", "x"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a password change from another institution: %v", err)
		}
		if err := db.SetStaffDisabled(ctx, got.Scope(), adminID, true, "wang"); !errors.Is(err, storage.ErrLastAdmin) {
			t.Fatalf("disabling the last admin: %v", err)
		}
		secondID, err := db.CreateStaff(ctx, storage.Staff{Username: "li", Role: storage.RoleAdmin, InstitutionID: in, PasswordHash: "h"}, "wang")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetStaffDisabled(ctx, got.Scope(), adminID, true, "li"); err != nil {
			t.Fatal(err)
		}
		if s, _ := db.StaffByUsername(ctx, "wang"); !s.Disabled || s.PasswordVersion != 3 {
			t.Fatalf("disabled: %+v", s)
		}
		if err := db.SetStaffDisabled(ctx, got.Scope(), secondID, true, "li"); !errors.Is(err, storage.ErrLastAdmin) {
			t.Fatalf("disabling the one admin left: %v", err)
		}

		log, total, err := db.AuditLog(ctx, got.Scope(), storage.Page{Limit: 2})
		if err != nil || total != 4 || len(log) != 2 || log[0].Action != "staff.disable" || log[0].Actor != "li" || log[1].Action != "staff.create" {
			t.Fatalf("the institution's audit log: %+v, %d, %v", log, total, err)
		}
		if _, total, _ := db.AuditLog(ctx, foreign, storage.Page{}); total != 0 {
			t.Fatalf("another institution reads %d entries", total)
		}
		if _, total, _ := db.AuditLog(ctx, storage.Scope{}, storage.Page{}); total != 5 {
			t.Fatalf("the whole deployment's log: %d entries", total)
		}
	})
}

func TestStaffSessions(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		token, s, err := r.StartStaffSession(ctx, 7, 2, time.Minute)
		if err != nil || s.StaffID != 7 || s.PasswordVersion != 2 || len(s.CSRF) < 40 || len(token) < 40 {
			t.Fatalf("start: %q %+v %v", token, s, err)
		}
		got, err := r.TouchStaffSession(ctx, token, time.Minute)
		if err != nil || got.StaffID != 7 || got.CSRF != s.CSRF {
			t.Fatalf("touch: %+v, %v", got, err)
		}
		if _, err := r.TouchStaffSession(ctx, token+"x", time.Minute); !errors.Is(err, storage.ErrNoSession) {
			t.Fatalf("a wrong token: %v", err)
		}
		// Redis holds the session under the token's hash, never the token.
		keys, _ := r.Client.Keys(ctx, r.Prefix+":*").Result()
		for _, k := range keys {
			if v, _ := r.Client.Get(ctx, k).Result(); len(k) > 0 && (contains(k, token) || contains(v, token)) {
				t.Fatalf("the session token is in Redis: %s", k)
			}
		}
		if err := r.EndStaffSession(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, err := r.TouchStaffSession(ctx, token, time.Minute); !errors.Is(err, storage.ErrNoSession) {
			t.Fatalf("after sign-out: %v", err)
		}
		short, _, _ := r.StartStaffSession(ctx, 7, 2, 300*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		if _, err := r.TouchStaffSession(ctx, short, 300*time.Millisecond); err != nil {
			t.Fatalf("touched inside its idle time: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := r.TouchStaffSession(ctx, short, 300*time.Millisecond); err != nil {
			t.Fatalf("a touch did not extend the session: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		if _, err := r.TouchStaffSession(ctx, short, 300*time.Millisecond); !errors.Is(err, storage.ErrNoSession) {
			t.Fatalf("an idle session lives on: %v", err)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestSignInFailures(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		var n []int
		for range 3 {
			var err error
			if n, err = r.CountSignIn(ctx, 400*time.Millisecond, "user:wang", "ip:10.0.0.1"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n[0] != 3 || n[1] != 3 {
			t.Fatalf("counts: %v", n)
		}
		if err := r.UncountSignIn(ctx, "ip:10.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := r.CountSignIn(ctx, time.Minute, "ip:10.0.0.1"); n[0] != 3 {
			t.Fatalf("after taking one back and adding one: %v", n)
		}
		// The window starts at the first attempt and does not move with later ones.
		time.Sleep(350 * time.Millisecond)
		if n, _ := r.CountSignIn(ctx, time.Minute, "user:wang"); n[0] != 1 {
			t.Fatalf("the window moved with later attempts: %v", n)
		}
		r.CountSignIn(ctx, time.Minute, "user:li")
		if err := r.ClearSignInFailures(ctx, "user:li"); err != nil {
			t.Fatal(err)
		}
		if n, _ := r.CountSignIn(ctx, time.Minute, "user:li"); n[0] != 1 {
			t.Fatalf("after clearing: %v", n)
		}
		if err := r.UncountSignIn(ctx, "ip:nobody"); err != nil {
			t.Fatal(err)
		}

		browser, err := r.RememberBrowser(ctx, 7, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := r.KnownBrowser(ctx, browser, 7); !ok {
			t.Fatal("a remembered browser is not known")
		}
		if ok, _ := r.KnownBrowser(ctx, browser, 8); ok {
			t.Fatal("a browser is known for another account")
		}
		if ok, _ := r.KnownBrowser(ctx, "", 7); ok {
			t.Fatal("no token is a known browser")
		}
	})
}
