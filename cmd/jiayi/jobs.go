package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jiayi-health/jiayi/bot"
	"github.com/jiayi-health/jiayi/bot/config"
)

const jobsUsage = `usage: jiayi jobs run --once [--now 2026-12-01T10:00:00+08:00]

Runs every background job once, one after another, at the given moment
(default: now), on JIAYI_DATABASE_URL and JIAYI_REDIS_URL: contract expiry,
slots, doctors' agendas, the seasonal calendar, the seasonal digest,
personal reminders, sign-request follow-ups, indicator rollups and WeChat
tag sync (not in sandbox mode). The scheduler inside jiayi serve runs the
same passes. Prints one JSON object: for each job the rows it read or
changed, the pushes it enqueued and the seconds it took. The pushes wait in
the outbox for a running server's dispatcher. On SQLite, stop a server
running on the file first.

A run is recorded as the servers' own: the day's personal reminders and
each calendar entry's campaign, once done, are not done again, so a run
dated ahead makes the servers skip that day's personal reminders. Give
moments in order, as a server's clock moves.
`

// jobsCommand runs the background jobs once.
func jobsCommand(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("jobs run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "run each job once and exit")
	at := fs.String("now", "", "the moment to run them at, RFC 3339")
	if len(args) == 0 || args[0] != "run" || fs.Parse(args[1:]) != nil || fs.NArg() != 0 || !*once {
		fmt.Fprint(stderr, jobsUsage)
		return 2
	}
	now := time.Now()
	if *at != "" {
		var err error
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			fmt.Fprintf(stderr, "jiayi jobs run: --now %q is not an RFC 3339 time, e.g. 2026-12-01T10:00:00+08:00\n", *at)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := bot.New(ctx, cfg, log, bot.Options{})
	if err != nil {
		fmt.Fprintln(stderr, "jiayi jobs run:", err)
		return 1
	}
	defer srv.Close()
	if *at != "" { // what the database stamps keeps to the moment too
		srv.DB.SetClock(func() time.Time { return now })
	}
	runs, err := srv.RunJobsOnce(ctx, now)
	out, _ := json.Marshal(map[string]any{"jobs": runs})
	fmt.Fprintln(stdout, string(out))
	if err != nil {
		fmt.Fprintln(stderr, "jiayi jobs run:", err)
		return 1
	}
	return 0
}
