package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func newContract(t *testing.T, db *storage.DB, key, idHash string) storage.NewContract {
	t.Helper()
	ctx := context.Background()
	cs, _ := db.Communities(ctx)
	teams, _ := db.TeamsServing(ctx, cs[0].ID)
	return storage.NewContract{
		RequestKey: key, Day: "261123",
		Resident: storage.NewResident{ManagerOpenID: "o_res", Relation: "self", Name: "王小明", IDSealed: "v1:sealed",
			IDHash: idHash, PhoneSealed: "v1:sealedphone", PhoneHash: "ph", BirthDate: "1950-01-01", Sex: "male",
			CommunityID: cs[0].ID, GroupsSealed: "v1:sealed-groups"},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "2026-11", AgreedAt: time.Now(), ConsentVersion: "2026-11", ConsentedAt: time.Now(), ConsentBy: "o_res",
		Packages: []storage.ContractPackage{{Code: "basic", Name: "基础包", Kind: "basic", Split: storage.Split{}},
			{Code: "chronic", Name: "慢病包", Kind: "personalised", Split: storage.Split{"resident": 4000}}},
		Notify: func(number string) storage.Push {
			return storage.Push{Key: "sign:" + number, Kind: "sign_request", Recipient: "doctor:1", Fields: map[string]string{"number": number}}
		},
	}
}

func TestContractLifecycle(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		number, created, err := db.CreateContract(ctx, newContract(t, db, "sign:o_res:1", "idhash-1"))
		if err != nil || !created || number != "QY2611230001" {
			t.Fatalf("create: %q %v %v", number, created, err)
		}
		again, created, err := db.CreateContract(ctx, newContract(t, db, "sign:o_res:1", "idhash-1"))
		if err != nil || created || again != number {
			t.Fatalf("replay: %q %v %v", again, created, err)
		}
		if _, _, err := db.CreateContract(ctx, newContract(t, db, "sign:o_other:9", "idhash-1")); !errors.Is(err, storage.ErrLiveContract) {
			t.Fatalf("second contract for the same person: %v", err)
		}
		second, _, err := db.CreateContract(ctx, newContract(t, db, "sign:o_res:2", "idhash-2"))
		if err != nil || second != "QY2611230002" {
			t.Fatalf("next number: %q %v", second, err)
		}
		if live, _ := db.HasLiveContract(ctx, "idhash-1"); !live {
			t.Fatal("pending contract not live")
		}
		v, err := db.ContractByNumber(ctx, number)
		if err != nil || v.Status != storage.ContractPending || v.ResidentName != "王小明" || len(v.Packages) != 2 ||
			v.Packages[1].Split["resident"] != 4000 || v.TeamName != "张医生团队" || v.CommunityName != "东村" {
			t.Fatalf("view = %+v, %v", v, err)
		}
		rows, _ := db.OutboxFor(ctx, "doctor:1")
		if len(rows) != 2 || rows[0].Key != "sign:"+number {
			t.Fatalf("doctor notifications = %+v", rows)
		}
		confirm := storage.StatusChange{Number: number, From: storage.ContractPending, To: storage.ContractActive,
			Actor: "o_doc", TermEnd: "2027-11-22", Notify: []storage.Push{{Key: "ok:" + number, Kind: "sign_confirmed", Recipient: "o_res"}}}
		if err := db.ChangeStatus(ctx, confirm); err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeStatus(ctx, confirm); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("confirming twice: %v", err)
		}
		v, _ = db.ContractByNumber(ctx, number)
		if v.Status != storage.ContractActive || v.TermEnd.String != "2027-11-22" {
			t.Fatalf("after confirm: %+v", v)
		}
		mine, _ := db.ContractsManagedBy(ctx, "o_res")
		if len(mine) != 2 || mine[0].Number != second {
			t.Fatalf("managed = %+v", mine)
		}
		var events int
		storagetest.SQL(t, db).GetContext(ctx, &events, `SELECT COUNT(*) FROM contract_events`)
		if events != 3 {
			t.Fatalf("%d events, want 3", events)
		}
	})
}

// Two signings of one person racing (two devices, two managers): one wins.
func TestConcurrentSigningsMakeOneContract(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		var wg sync.WaitGroup
		var mu sync.Mutex
		made := 0
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, created, err := db.CreateContract(ctx, newContract(t, db, fmt.Sprintf("sign:%d", i), "idhash-race"))
				if err != nil && !errors.Is(err, storage.ErrLiveContract) {
					t.Error(err)
				}
				if created {
					mu.Lock()
					made++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if made != 1 {
			t.Fatalf("%d contracts made, want 1", made)
		}
	})
}

func TestIDAttemptsCountDistinctNumbersPerDay(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for i, h := range []string{"a", "b", "a", "c"} {
			n, err := db.TryID(ctx, "o", "261123", h)
			want := []int{1, 2, 2, 3}[i]
			if err != nil || n != want {
				t.Fatalf("attempt %d: %d %v, want %d", i, n, err, want)
			}
		}
		if tried, n, _ := db.IDTriedToday(ctx, "o", "261123", "b"); !tried || n != 3 {
			t.Fatalf("tried b: %v %d", tried, n)
		}
		if n, _ := db.TryID(ctx, "o", "261124", "d"); n != 1 {
			t.Fatalf("a new day: %d", n)
		}
	})
}

func TestExpireContracts(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		number, _, _ := db.CreateContract(ctx, newContract(t, db, "k1", "h1"))
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: "2027-11-22"})
		if n, err := db.ExpireContracts(ctx, "2027-11-22"); err != nil || n != 0 {
			t.Fatalf("on the last day: %d %v", n, err)
		}
		if n, err := db.ExpireContracts(ctx, "2027-11-23"); err != nil || n != 1 {
			t.Fatalf("the day after: %d %v", n, err)
		}
		if v, _ := db.ContractByNumber(ctx, number); v.Status != storage.ContractExpired {
			t.Fatalf("status %s", v.Status)
		}
		if n, _ := db.ExpireContracts(ctx, "2027-11-24"); n != 0 {
			t.Fatal("expired twice")
		}
	})
}

// A refused signing (the person already has a live contract) notifies no one.
func TestRefusedSigningLeavesNoPush(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		if _, _, err := db.CreateContract(ctx, newContract(t, db, "first", "same-person")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.CreateContract(ctx, newContract(t, db, "second", "same-person")); !errors.Is(err, storage.ErrLiveContract) {
			t.Fatal(err)
		}
		rows, _ := db.OutboxFor(ctx, "doctor:1")
		if len(rows) != 1 {
			t.Fatalf("%d notifications, want only the first signing's", len(rows))
		}
	})
}

// 改签 of an active contract waits for the new doctor: one change at a
// time, answered only by that doctor, declined leaves the contract as it
// was, accepted moves it; a contract that ends drops a waiting change.
func TestTeamChangeWaitsForTheNewDoctor(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		docs, _ := db.Doctors(ctx)
		var mine, other storage.DoctorWithTeam
		for _, d := range docs {
			if d.TeamName == "张医生团队" {
				mine = d
			} else {
				other = d
			}
		}
		number, _, err := db.CreateContract(ctx, newContract(t, db, "k1", "h1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.RequestTeamChange(ctx, number, other.TeamID, other.ID, "o", nil); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("a pending contract took a change request: %v", err)
		}
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: "2027-11-22"})
		request := []storage.Push{{Key: "req:1", Kind: "sign_request", Recipient: "doctor:2"}}
		if err := db.RequestTeamChange(ctx, number, other.TeamID, other.ID, "o", request); err != nil {
			t.Fatal(err)
		}
		if err := db.RequestTeamChange(ctx, number, other.TeamID, other.ID, "o", nil); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("a second change request: %v", err)
		}
		v, _ := db.ContractByNumber(ctx, number)
		if v.DoctorID != mine.ID || v.ChangeDoctorID.Int64 != other.ID || v.ChangeTeamName.String != other.TeamName {
			t.Fatalf("while waiting: %+v", v)
		}
		if err := db.AnswerTeamChange(ctx, number, mine.ID, true, "d", "", nil); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("answered by a doctor it does not wait for: %v", err)
		}
		if err := db.AnswerTeamChange(ctx, number, other.ID, false, "d2", "no", nil); err != nil {
			t.Fatal(err)
		}
		if v, _ = db.ContractByNumber(ctx, number); v.DoctorID != mine.ID || v.ChangeTeamID.Valid || v.Status != "active" {
			t.Fatalf("after a decline: %+v", v)
		}
		unsent := func(key string) []storage.Push {
			return []storage.Push{{Key: key, Kind: "sign_request", Recipient: "doctor:9"}}
		}
		state := func(key string) string {
			rows, _ := db.OutboxFor(ctx, "doctor:9")
			for _, r := range rows {
				if r.Key == key {
					return r.State
				}
			}
			return ""
		}
		db.RequestTeamChange(ctx, number, other.TeamID, other.ID, "o", unsent(storage.TeamChangeKeyPrefix(number)+"0"))
		if err := db.AnswerTeamChange(ctx, number, other.ID, true, "d2", "", nil); err != nil {
			t.Fatal(err)
		}
		// Answered in the console, the request the doctor has not yet been
		// sent would ask again for what was answered.
		if got := state(storage.TeamChangeKeyPrefix(number) + "0"); got != "cancelled" {
			t.Fatalf("the unsent request of an answered change is %q", got)
		}
		if v, _ = db.ContractByNumber(ctx, number); v.DoctorID != other.ID || v.TeamID != other.TeamID || v.ChangeTeamID.Valid ||
			v.TermEnd.String != "2027-11-22" {
			t.Fatalf("after the move: %+v", v)
		}
		db.RequestTeamChange(ctx, number, mine.TeamID, mine.ID, "o", unsent(storage.TeamChangeKeyPrefix(number)+"1"))
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "active", To: "cancelled", Actor: "o"})
		if v, _ = db.ContractByNumber(ctx, number); v.ChangeTeamID.Valid {
			t.Fatalf("a cancelled contract keeps a waiting change: %+v", v)
		}
		if got := state(storage.TeamChangeKeyPrefix(number) + "1"); got != "cancelled" {
			t.Fatalf("the unsent request of a cancelled contract is %q", got)
		}
		// Expiry drops a waiting change and its unsent request too.
		expiring, _, _ := db.CreateContract(ctx, newContract(t, db, "k2", "h2"))
		db.ChangeStatus(ctx, storage.StatusChange{Number: expiring, From: "pending", To: "active", Actor: "d", TermEnd: "2026-01-31"})
		db.RequestTeamChange(ctx, expiring, other.TeamID, other.ID, "o", unsent(storage.TeamChangeKeyPrefix(expiring)+"2"))
		if n, err := db.ExpireContracts(ctx, "2026-02-01"); err != nil || n != 1 {
			t.Fatalf("expired %d, %v", n, err)
		}
		if v, _ = db.ContractByNumber(ctx, expiring); v.Status != "expired" || v.ChangeTeamID.Valid {
			t.Fatalf("an expired contract keeps a waiting change: %+v", v)
		}
		if got := state(storage.TeamChangeKeyPrefix(expiring) + "2"); got != "cancelled" {
			t.Fatalf("the unsent request of an expired contract is %q", got)
		}
	})
}

// A contract keeps when it came into force and when it ended, set by the
// change of status itself; the indicators read them.
func TestContractKeepsWhenItWasInForce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		confirmed := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		type inForce struct {
			ConfirmedAt time.Time    `db:"confirmed_at"`
			EndedAt     sql.NullTime `db:"ended_at"`
		}
		facts := func() []inForce {
			var out []inForce
			if err := storagetest.SQL(t, db).Select(&out, `SELECT confirmed_at, ended_at FROM contracts WHERE confirmed_at IS NOT NULL
				ORDER BY id`); err != nil {
				t.Fatal(err)
			}
			return out
		}
		number, _, _ := db.CreateContract(ctx, newContract(t, db, "k1", "h1"))
		if got := facts(); len(got) != 0 {
			t.Fatalf("a pending contract is in force: %+v", got)
		}
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "pending", To: "active", Actor: "d", TermEnd: "2027-02-28", At: confirmed})
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "active", To: "active", Actor: "o", TermEnd: "2028-02-28",
			IfTermEnd: "2027-02-28", Reason: "renewed", At: confirmed.AddDate(1, 0, 0)})
		got := facts()
		if len(got) != 1 || !got[0].ConfirmedAt.Equal(confirmed) || got[0].EndedAt.Valid {
			t.Fatalf("after confirming and renewing: %+v", got)
		}
		db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: "active", To: "cancelled", Actor: "o"})
		if got = facts(); len(got) != 1 || !got[0].EndedAt.Valid || time.Since(got[0].EndedAt.Time) > time.Minute {
			t.Fatalf("after cancelling: %+v", got)
		}
		expiring, _, _ := db.CreateContract(ctx, newContract(t, db, "k2", "h2"))
		db.ChangeStatus(ctx, storage.StatusChange{Number: expiring, From: "pending", To: "active", Actor: "d", TermEnd: "2026-01-31", At: confirmed})
		db.ExpireContracts(ctx, "2026-02-01")
		for _, k := range facts() {
			if !k.EndedAt.Valid {
				t.Fatalf("an expired contract did not end: %+v", k)
			}
		}
	})
}

// A name search takes % and _ as characters, not wildcards.
func TestNameSearchHasNoWildcards(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		db.CreateContract(ctx, newContract(t, db, "k1", "h1"))
		for q, want := range map[string]int{"小": 1, "王小明": 1, "%": 0, "_": 0, "王%": 0, `\`: 0} {
			if _, total, err := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{Query: q}, storage.Page{}); err != nil || total != want {
				t.Errorf("%q: %d residents, %v; want %d", q, total, err, want)
			}
		}
	})
}

// A renewal keeps the ending term's packages apart and holds the new
// term's, with the agreement given for it; the account counts both terms'
// shares, and a replay renews once.
func TestRenewalKeepsEachTermsPackages(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		number, _, err := db.CreateContract(ctx, newContract(t, db, "sign:o_res:r", "idhash-r"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending, To: storage.ContractActive,
			Actor: "d", TermEnd: "2027-11-22"}); err != nil {
			t.Fatal(err)
		}
		renew := storage.StatusChange{Number: number, From: storage.ContractActive, To: storage.ContractActive, Actor: "o_res",
			TermEnd: "2028-11-22", IfTermEnd: "2027-11-22", Reason: "renewed",
			Renewal: &storage.Renewal{AgreementVersion: "2027-10", AgreedAt: time.Now(),
				Packages: []storage.ContractPackage{{Code: "basic", Name: "基础包", Kind: "basic", Split: storage.Split{"resident": 1000}}}}}
		if err := db.ChangeStatus(ctx, renew); err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeStatus(ctx, renew); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("a replayed renewal: %v", err)
		}
		c, _ := db.ContractByNumber(ctx, number)
		if len(c.Packages) != 1 || c.Packages[0].Code != "basic" || c.TermEnd.String != "2028-11-22" {
			t.Fatalf("after renewal: %+v", c)
		}
		var version string
		sql := storagetest.SQL(t, db)
		if err := sql.Get(&version, sql.Rebind(`SELECT agreement_version FROM contracts WHERE number = ?`), number); err != nil || version != "2027-10" {
			t.Fatalf("the contract records agreement %q (%v)", version, err)
		}
		// 40 yuan for the chronic package's first term, 10 for the second.
		if a, err := db.ContractAccount(ctx, c.ID); err != nil || a.Due != 5000 {
			t.Fatalf("account over both terms: %+v %v", a, err)
		}
	})
}

// Signing a resident again keeps their recorded due date when none is
// given (a desk signing, an import) and takes the one given otherwise.
func TestSigningAgainKeepsADueDate(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		sign := func(key, due string) string {
			t.Helper()
			nc := newContract(t, db, key, "idhash-due")
			nc.Resident.DueDateSealed = due
			number, _, err := db.CreateContract(ctx, nc)
			if err != nil {
				t.Fatal(err)
			}
			return number
		}
		cancel := func(number string) {
			t.Helper()
			if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending, To: storage.ContractCancelled, Actor: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		cancel(sign("due:1", "v1:first"))
		if got, _ := db.DueDateByIDHash(ctx, "idhash-due"); got != "v1:first" {
			t.Fatalf("after signing with one: %q", got)
		}
		cancel(sign("due:2", ""))
		if got, _ := db.DueDateByIDHash(ctx, "idhash-due"); got != "v1:first" {
			t.Fatalf("signed again without one: %q", got)
		}
		sign("due:3", "v1:second")
		if got, _ := db.DueDateByIDHash(ctx, "idhash-due"); got != "v1:second" {
			t.Fatalf("signed again with another: %q", got)
		}
		if got, err := db.DueDateByIDHash(ctx, "no-such-hash"); got != "" || err != nil {
			t.Fatalf("no such resident: %q %v", got, err)
		}
	})
}

// Contract numbers run through a day, a fifth digit from its 10,000th
// signing. A signing rolled back with its caller's transaction (an import)
// returns its number; one rolled back on its own leaves it unused on
// PostgreSQL, where numbers are taken apart from the signing.
func TestContractNumbers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		errRollback := errors.New("roll back")
		signAndRollBack := func(key, idHash string, inTx bool) string {
			t.Helper()
			var number string
			err := db.InTx(ctx, func(tx *storage.DB) error {
				nc := newContract(t, db, key, idHash)
				nc.NumberInTx = inTx
				var err error
				if number, _, err = tx.CreateContract(ctx, nc); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("signing %s: %v", key, err)
			}
			return number
		}
		if n := signAndRollBack("sign:a", "idhash-a", true); n != "QY2611230001" {
			t.Fatalf("first number %q", n)
		}
		if n := signAndRollBack("sign:b", "idhash-b", true); n != "QY2611230001" {
			t.Fatalf("a number taken in a transaction rolled back was not returned: next is %q", n)
		}
		apart := signAndRollBack("sign:c", "idhash-c", false)
		next, _, err := db.CreateContract(ctx, newContract(t, db, "sign:d", "idhash-d"))
		want := "QY2611230001" // SQLite: one writer, the number inside the transaction
		if db.Dialect == storage.Postgres {
			want = "QY2611230002" // taken apart: the rolled-back signing's number stays used
		}
		if apart != "QY2611230001" || err != nil || next != want {
			t.Fatalf("after a signing rolled back on its own (%q): %q, %v; want %q", apart, next, err, want)
		}
		raw := storagetest.SQL(t, db)
		raw.MustExecContext(ctx, raw.Rebind(`UPDATE contract_numbers SET last = 9999 WHERE day = ?`), "261123")
		if n, _, err := db.CreateContract(ctx, newContract(t, db, "sign:e", "idhash-e")); err != nil || n != "QY26112310000" {
			t.Fatalf("the day's 10,000th number: %q, %v", n, err)
		}
		v, err := db.ContractByNumber(ctx, "QY26112310000")
		if err != nil || v.Status != storage.ContractPending {
			t.Fatalf("the 10,000th contract by its number: %+v, %v", v, err)
		}
	})
}

// On PostgreSQL a signing whose transaction is still open does not hold
// the day's count: another signing takes the next number and commits
// meanwhile. (SQLite has one writer at a time; there the second waits.)
func TestSigningDoesNotWaitForAnotherToCommit(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		if db.Dialect != storage.Postgres {
			return
		}
		ctx := context.Background()
		seedOrganisation(t, db)
		took, release := make(chan string), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.InTx(ctx, func(tx *storage.DB) error {
				n, _, err := tx.CreateContract(ctx, newContract(t, db, "sign:slow", "idhash-slow"))
				if err != nil {
					return err
				}
				took <- n
				<-release
				return nil
			})
		}()
		var first string
		select {
		case first = <-took:
		case err := <-done:
			t.Fatalf("the first signing: %v", err)
		}
		quick, cancel := context.WithTimeout(ctx, 5*time.Second)
		second, _, err := db.CreateContract(quick, newContract(t, db, "sign:quick", "idhash-quick"))
		cancel()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err != nil || first != "QY2611230001" || second != "QY2611230002" {
			t.Fatalf("with the first signing open (%q), the second: %q, %v", first, second, err)
		}
	})
}

// A signing writes each of its rows once, the same on both databases and
// whether the resident is new (PostgreSQL writes them in one statement) or
// known: their group tags once each, the contract with what the kind of
// signing sets, its packages and first event, and the doctor's
// notification unless a family member must confirm first; the commit then
// tells the dispatcher once.
func TestSigningWritesEachRowOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		raw := storagetest.SQL(t, db)
		count := func(query string, args ...any) int {
			t.Helper()
			var n int
			if err := raw.GetContext(ctx, &n, raw.Rebind(query), args...); err != nil {
				t.Fatal(err)
			}
			return n
		}
		pushes := countPushes(db)

		// A resident signs, and again once their contract ended: the known
		// resident's path, with their tags replaced. They then hold two
		// contracts, so the next resident's id and their contract's differ
		// and a row given the wrong one shows.
		first := newContract(t, db, "sign:first", "idhash-first")
		first.Resident.GroupTags = []string{"tag-a"}
		number, _, err := db.CreateContract(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		raw.MustExecContext(ctx, raw.Rebind(`UPDATE contracts SET status = 'expired' WHERE number = ?`), number)
		again := newContract(t, db, "sign:first:2", "idhash-first")
		again.Resident.GroupTags = []string{"tag-c"}
		number, created, err := db.CreateContract(ctx, again)
		if err != nil || !created {
			t.Fatalf("signing a known resident again: %v", err)
		}
		v, _ := db.ContractByNumber(ctx, number)
		if count(`SELECT COUNT(*) FROM resident_groups WHERE resident_id = ? AND tag = 'tag-c'`, v.ResidentID) != 1 ||
			count(`SELECT COUNT(*) FROM resident_groups WHERE resident_id = ?`, v.ResidentID) != 1 {
			t.Fatal("a known resident's tags were not replaced")
		}
		told := pushes.Load()

		nc := newContract(t, db, "sign:tags", "idhash-tags")
		nc.Resident.GroupTags = []string{"tag-b", "tag-a", "tag-b"}
		number, created, err = db.CreateContract(ctx, nc)
		if err != nil || !created {
			t.Fatalf("signing a new resident: %v", err)
		}
		v, err = db.ContractByNumber(ctx, number)
		if err != nil || v.Status != storage.ContractPending || v.ResidentName != "王小明" || len(v.Packages) != 2 ||
			v.Packages[1].Split["resident"] != 4000 || v.TermEnd.Valid {
			t.Fatalf("contract %+v, %v", v, err)
		}
		if v.ID == v.ResidentID {
			t.Fatal("the resident's and the contract's ids are alike: a mix-up would not show")
		}
		if n := count(`SELECT COUNT(*) FROM resident_groups WHERE resident_id = ?`, v.ResidentID); n != 2 {
			t.Fatalf("%d group tags, want 2", n)
		}
		if n := count(`SELECT COUNT(*) FROM residents WHERE id = ? AND groups_indexed = 1`, v.ResidentID); n != 1 {
			t.Fatal("a new resident's tags are not marked written")
		}
		if n := count(`SELECT COUNT(*) FROM contract_events e JOIN contracts c ON c.id = e.contract_id
			WHERE c.id = ? AND e.from_status = '' AND e.to_status = 'pending' AND e.reason = 'signed in chat'
			AND e.actor = 'o_res' AND e.at >= c.created_at`, v.ID); n != 1 {
			t.Fatalf("%d first events, want 1", n)
		}
		if n := count(`SELECT COUNT(*) FROM outbox WHERE idempotency_key = ? AND recipient = 'doctor:1'
			AND payload LIKE ?`, "sign:"+number, "%"+number+"%"); n != 1 || pushes.Load() != told+1 {
			t.Fatalf("%d notifications, dispatcher told %d times; want 1 and 1", n, pushes.Load()-told)
		}
		if db.Dialect == storage.Postgres {
			// Rows one statement wrote share its transaction and command id.
			if n := count(`SELECT COUNT(DISTINCT x) FROM (
				SELECT xmin::text || '/' || cmin::text AS x FROM residents WHERE id = $1
				UNION ALL SELECT xmin::text || '/' || cmin::text FROM resident_groups WHERE resident_id = $1
				UNION ALL SELECT xmin::text || '/' || cmin::text FROM contracts WHERE id = $2
				UNION ALL SELECT xmin::text || '/' || cmin::text FROM contract_packages WHERE contract_id = $2
				UNION ALL SELECT xmin::text || '/' || cmin::text FROM contract_events WHERE contract_id = $2
				UNION ALL SELECT xmin::text || '/' || cmin::text FROM outbox WHERE idempotency_key = $3) s`,
				v.ResidentID, v.ID, "sign:"+number); n != 1 {
				t.Fatalf("a new resident's signing took %d statements, want 1", n)
			}
		}

		// A notification already written is not written or announced again.
		twice := newContract(t, db, "sign:twice", "idhash-twice")
		notify, taken := twice.Notify, number
		twice.Notify = func(n string) storage.Push { p := notify(n); p.Key = "sign:" + taken; return p }
		told = pushes.Load()
		if _, created, err := db.CreateContract(ctx, twice); err != nil || !created {
			t.Fatalf("signing with a notification key already used: %v", err)
		}
		if n := count(`SELECT COUNT(*) FROM outbox WHERE idempotency_key = ?`, "sign:"+taken); n != 1 || pushes.Load() != told {
			t.Fatalf("%d rows for the key, dispatcher told %d times; want 1 and 0", n, pushes.Load()-told)
		}

		// A package twice is a plain error, not "already signed", and
		// leaves nothing behind.
		bad := newContract(t, db, "sign:bad", "idhash-bad")
		bad.Packages = append(bad.Packages, bad.Packages[0])
		if _, _, err := db.CreateContract(ctx, bad); err == nil || errors.Is(err, storage.ErrLiveContract) {
			t.Fatalf("a package twice: %v", err)
		}
		if n := count(`SELECT COUNT(*) FROM residents WHERE id_number_hash = 'idhash-bad'`); n != 0 {
			t.Fatal("a failed signing left its resident")
		}

		// A family member must confirm first: no notification yet.
		family := newContract(t, db, "sign:family", "idhash-family")
		family.MemberCode, family.MemberCodeExpires = "code-hash", time.Now().Add(time.Hour)
		told = pushes.Load()
		number, _, err = db.CreateContract(ctx, family)
		if err != nil {
			t.Fatal(err)
		}
		if n := count(`SELECT COUNT(*) FROM outbox WHERE idempotency_key = ?`, "sign:"+number); n != 0 || pushes.Load() != told {
			t.Fatalf("a signing waiting for the member notified the doctor (%d rows, %d calls)", n, pushes.Load()-told)
		}
		if n := count(`SELECT COUNT(*) FROM contracts WHERE number = ? AND member_code_hash = 'code-hash'
			AND member_code_expires IS NOT NULL`, number); n != 1 {
			t.Fatal("the member's code is not kept")
		}

		// Signed on paper: in force at once, with its term and where it came from.
		paper := newContract(t, db, "import:1", "idhash-paper")
		paper.Active, paper.TermEnd, paper.Event, paper.Notify = true, "2027-11-22", "imported", nil
		number, _, err = db.CreateContract(ctx, paper)
		if err != nil {
			t.Fatal(err)
		}
		v, err = db.ContractByNumber(ctx, number)
		if err != nil || v.Status != storage.ContractActive || v.TermEnd.String != "2027-11-22" ||
			count(`SELECT COUNT(*) FROM contracts WHERE id = ? AND confirmed_at IS NOT NULL`, v.ID) != 1 {
			t.Fatalf("signed on paper: %+v, %v", v, err)
		}
		if n := count(`SELECT COUNT(*) FROM contract_events WHERE contract_id = ? AND to_status = 'active' AND reason = 'imported'`, v.ID); n != 1 {
			t.Fatal("the paper signing's event is missing")
		}
		if n := count(`SELECT COUNT(*) FROM residents`); n != 5 {
			t.Fatalf("%d residents, want 5", n)
		}
	})
}
