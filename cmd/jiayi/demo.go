package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/bot"
	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

const demoUsage = `usage: jiayi demo seed --residents N [--region R] [--now RFC3339]
       jiayi demo remove

seed fills JIAYI_DATABASE_URL with N made-up signed residents of the
JIAYI_REGION profile (or R), in a city's proportions (about 1,035 a team,
15 teams an institution; a fifth with hypertension and a twelfth with
diabetes, each with four follow-ups this year and a third with the next
booked a week ahead), each following the account
(one in ten wrote to it in the last hour), as of now (or the moment given),
for demonstrations and benchmarks. Their ID numbers and phones are a
sealed placeholder ("演示数据"). Prints what it made as JSON.

remove deletes the demo organisation sandbox mode loaded (the demo
institution, its communities, doctors and their binding codes, teams,
schedules and slots, the console account "admin") and the residents,
contracts, appointments and pushes made while trying the sandbox with it,
in one transaction. A production start refuses a database that still holds
it. Prints how many rows it deleted from each table as JSON; run again, it
deletes nothing. Stop a server running on the database first.
`

// demoCommand seeds a demonstration or benchmark database, or removes the
// sandbox's demo data.
func demoCommand(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "remove" {
		return demoRemove(ctx, cfg, stdout, stderr)
	}
	fs := flag.NewFlagSet("demo seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	residents := fs.Int("residents", 0, "how many residents to seed")
	region := fs.String("region", "", "the region profile (default JIAYI_REGION)")
	at := fs.String("now", "", "the moment the seeding is as of, RFC 3339 (default now)")
	if len(args) == 0 || args[0] != "seed" || fs.Parse(args[1:]) != nil || fs.NArg() != 0 || *residents < 1 {
		fmt.Fprint(stderr, demoUsage)
		return 2
	}
	if *region != "" {
		if !slices.Contains(templates.ProfileCodes(), *region) {
			fmt.Fprintf(stderr, "jiayi demo seed: no region profile %q; known: %s\n", *region, strings.Join(templates.ProfileCodes(), ", "))
			return 2
		}
		cfg.Region = *region
	}
	now := time.Now()
	if *at != "" {
		var err error
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			fmt.Fprintf(stderr, "jiayi demo seed: --now %q is not an RFC 3339 time, e.g. 2026-12-01T10:00:00+08:00\n", *at)
			return 2
		}
	}
	return demoSeed(ctx, *residents, now, cfg, stdout, stderr)
}

// demoSeed fills the database with made-up residents as of now.
func demoSeed(ctx context.Context, residents int, now time.Time, cfg config.Config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "jiayi demo seed:", err)
		return 1
	}
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	if err := profile.Ensure(ctx, db, cfg.Region); err != nil {
		return fail(err)
	}
	sealer, err := bot.OpenSealer(ctx, cfg, db, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	made, err := flows.SeedDemo(ctx, db, sealer, residents, now)
	if err != nil {
		return fail(err)
	}
	out, _ := json.Marshal(struct {
		storage.SeedResult
		Seconds float64 `json:"seconds"`
	}{made, time.Since(start).Seconds()})
	fmt.Fprintln(stdout, string(out))
	return 0
}

// demoRemove deletes the demo organisation a sandbox loaded, so the
// database can go live. On SQLite it refuses while a server runs on the
// file: a sandbox there would go on handing out the removed doctors' codes.
func demoRemove(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(stderr, "jiayi demo remove:", err)
		return 1
	}
	unlock, err := storage.LockSQLite(cfg.DatabaseURL)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	db, err := openMigrated(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	removed, err := db.RemoveDemo(ctx, "jiayi demo remove")
	if err != nil {
		return fail(err)
	}
	out, _ := json.Marshal(removed)
	fmt.Fprintln(stdout, string(out))
	return 0
}

// openMigrated opens JIAYI_DATABASE_URL with every migration applied.
func openMigrated(ctx context.Context, cfg config.Config) (*storage.DB, error) {
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
