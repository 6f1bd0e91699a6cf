package bot

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// The background jobs every instance runs besides the dispatcher. Each is
// safe to run on many instances at once: their effects are keyed or
// conditional. A job is one pass at a moment; the loops below run the
// passes on their schedule, and `jiayi jobs run --once` runs each pass once.

// job is one background job's pass: what it did, and its pushes (enqueued
// by the pass or returned for the caller to enqueue is the pass's own
// business).
type job struct {
	name string
	pass func(ctx context.Context, now time.Time) (rows, pushes int, err error)
}

// jobs lists the passes in the order a run of them all takes them: what
// makes contracts end, then what reminds, then what follows.
func (s *Server) jobs() []job {
	return []job{
		{"expiry", s.expiryPass},
		{"slots", s.slotsPass},
		{"agendas", s.agendasPass},
		{"seasonal", s.seasonalPass},
		{"digest", s.digestPass},
		{"personal", s.personalPass},
		{"sign_followup", s.signFollowUpPass},
		{"rollups", s.rollupsPass},
		{"tags", s.tagsPass},
	}
}

// RunJobsOnce runs every background job's pass once at now, one after
// another, and says what each did. A pass that fails stops the run: what
// the ones before did stays done.
func (s *Server) RunJobsOnce(ctx context.Context, now time.Time) (map[string]flows.JobRun, error) {
	out := map[string]flows.JobRun{}
	for _, j := range s.jobs() {
		if j.name == "tags" && s.Config.Sandbox() {
			out[j.name] = flows.JobRun{Skipped: "sandbox: tags are kept by the server's stand-in"}
			continue
		}
		run, err := s.runPass(ctx, j, now)
		if errors.Is(err, flows.ErrUnfinished) {
			run.Unfinished, err = "another instance holds part of it; run again later (a dead instance's part is taken over after 30 minutes)", nil
		}
		if err != nil {
			return out, err
		}
		out[j.name] = run
	}
	return out, nil
}

// runPass runs one pass, counting the rows it reads and timing it.
func (s *Server) runPass(ctx context.Context, j job, now time.Time) (flows.JobRun, error) {
	// Jobs that ask who wrote lately see this instance's latest turns.
	if s.seen != nil {
		if err := s.seen.Flush(ctx); err != nil {
			s.log.Warn("last-seen times not written before a job", "job", j.name, "err", err)
		}
	}
	var read atomic.Int64
	start := time.Now()
	rows, pushes, err := j.pass(flows.CountingRows(ctx, &read), now)
	return flows.JobRun{Rows: rows + int(read.Load()), Pushes: pushes, Seconds: time.Since(start).Seconds()}, err
}

// expiryPass ends contracts whose term is over, and signings for a family
// member they did not confirm in time.
func (s *Server) expiryPass(ctx context.Context, now time.Time) (int, int, error) {
	ended, err := s.DB.ExpireContracts(ctx, now.In(flows.Shanghai).Format("2006-01-02"))
	lapsed, err2 := flows.LapseMemberRequests(ctx, s.DB, now) // one failing does not stop the other
	return ended + lapsed, 0, errors.Join(err, err2)
}

// agendasPass enqueues each bound doctor's agenda for the day, from 07:30;
// keys make it once a day however often it runs.
func (s *Server) agendasPass(ctx context.Context, now time.Time) (int, int, error) {
	pushes, err := flows.AgendaPushes(ctx, s.DB, now)
	if err != nil || len(pushes) == 0 {
		return 0, 0, err
	}
	return len(pushes), len(pushes), s.DB.Apply(ctx, storage.Changes{Pushes: pushes})
}

// seasonalPass expands the seasonal calendar's due entries (each by one
// instance once a year) and catches up residents who signed since.
func (s *Server) seasonalPass(ctx context.Context, now time.Time) (int, int, error) {
	n, err := flows.RunSeasonal(ctx, s.DB, s.Sealer, now)
	return 0, n, err
}

// digestPass gives tips held for the digest to residents who wrote since,
// and writes the digest when one is due.
func (s *Server) digestPass(ctx context.Context, now time.Time) (int, int, error) {
	run, err := flows.RunDigest(ctx, s.DB, now)
	return run.Released + run.Tips + run.OverLimit + run.Left, run.Messages, err
}

// personalPass enqueues the day's personal reminders.
func (s *Server) personalPass(ctx context.Context, now time.Time) (int, int, error) {
	n, err := flows.RunPersonal(ctx, s.DB, s.Sealer, now)
	return 0, n, err
}

// slotsPass makes every doctor's slots for the booking window.
func (s *Server) slotsPass(ctx context.Context, now time.Time) (int, int, error) {
	n, err := flows.MaterialiseSlots(ctx, s.DB, now)
	return n, 0, err
}

// signFollowUpPass reminds doctors of sign requests they left unanswered
// and tells residents whose request waits long.
func (s *Server) signFollowUpPass(ctx context.Context, now time.Time) (int, int, error) {
	n, err := flows.FollowUpSignRequests(ctx, s.DB, now)
	return 0, n, err
}

// rollupsPass counts a city's team indicator totals for up to 50 seconds.
func (s *Server) rollupsPass(ctx context.Context, now time.Time) (int, int, error) {
	start := time.Now() // the budget is of real time, the counting as of now
	run, err := flows.RefreshRollups(ctx, s.DB, s.Sealer, func() time.Time { return now.Add(time.Since(start)) }, 50*time.Second)
	return run.Counted, 0, err
}

// tagsPass mirrors the segments that recur into WeChat user tags.
func (s *Server) tagsPass(ctx context.Context, _ time.Time) (int, int, error) {
	r, err := s.Tags.Sync(ctx)
	return r.Tagged + r.Untagged, 0, err
}

// every runs passes, one after another, at start and then each interval
// (or when the sandbox clock moves), logging what each did and any failure.
func (s *Server) every(ctx context.Context, interval time.Duration, names ...string) {
	for {
		moved := s.clock.moves()
		for _, name := range names {
			run, err := s.runPass(ctx, s.job(name), s.clock.Now())
			s.logPass(ctx, name, run, err)
		}
		if !s.clock.wait(ctx, moved, interval) {
			return
		}
	}
}

// daily runs a pass once a day per instance, checking hourly, and again
// the next hour if a pass fails; after is the time of day (Asia/Shanghai)
// before which it waits.
func (s *Server) daily(ctx context.Context, name string, after time.Duration, check time.Duration) {
	j := s.job(name)
	done := ""
	for {
		moved := s.clock.moves()
		now := s.clock.Now()
		today := now.In(flows.Shanghai).Format("2006-01-02")
		if today != done && now.Sub(flows.StartOfDay(now)) >= after {
			run, err := s.runPass(ctx, j, now)
			s.logPass(ctx, name, run, err)
			if err == nil {
				done = today
			}
		}
		if !s.clock.wait(ctx, moved, check) {
			return
		}
	}
}

func (s *Server) job(name string) job {
	for _, j := range s.jobs() {
		if j.name == name {
			return j
		}
	}
	panic("no job " + name)
}

func (s *Server) logPass(ctx context.Context, name string, run flows.JobRun, err error) {
	switch {
	case errors.Is(err, flows.ErrUnfinished): // tried again at the next check
		s.log.Info("background job left unfinished: another instance holds part of it", "job", name, "pushes", run.Pushes)
	case err != nil && ctx.Err() == nil:
		s.log.Error("background job failed", "job", name, "err", err)
	case err == nil && run.Pushes > 0:
		s.log.Info("background job done", "job", name, "rows", run.Rows, "pushes", run.Pushes, "seconds", run.Seconds)
	case err == nil && run.Rows > 0:
		s.log.Debug("background job done", "job", name, "rows", run.Rows, "seconds", run.Seconds)
	}
}

// startJobs starts each job's loop, counted in running until it returns.
func (s *Server) startJobs(ctx context.Context, running *sync.WaitGroup) {
	loops := []func(){
		func() { s.every(ctx, time.Hour, "expiry") },
		func() { s.daily(ctx, "agendas", flows.AgendaTime, time.Minute) },
		func() { s.every(ctx, 10*time.Minute, "seasonal", "digest") }, // a digest after the tips it may take
		func() { s.daily(ctx, "personal", 0, time.Hour) },
		func() { s.daily(ctx, "slots", 0, time.Hour) },
		func() { s.every(ctx, time.Hour, "sign_followup") },
		func() { s.every(ctx, time.Minute, "rollups") },
		func() { s.every(ctx, 10*time.Minute, "tags") },
	}
	for _, loop := range loops {
		running.Go(loop)
	}
}
