package bot

import (
	"context"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// The background jobs every instance runs besides the dispatcher. Each is
// safe to run on many instances at once: their effects are keyed or
// conditional.

// expireContracts ends contracts whose term is over, and signings for a
// family member they did not confirm in time, at start and hourly. Every
// instance runs it; the updates are conditional, so they do not clash.
func (s *Server) expireContracts(ctx context.Context) {
	for {
		moved := s.clock.moves()
		today := s.clock.Now().In(flows.Shanghai).Format("2006-01-02")
		if n, err := s.DB.ExpireContracts(ctx, today); err != nil && ctx.Err() == nil {
			s.log.Error("contract expiry failed", "err", err)
		} else if n > 0 {
			s.log.Info("contracts expired", "count", n)
		}
		if n, err := flows.LapseMemberRequests(ctx, s.DB, s.clock.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("lapsing unconfirmed family signings failed", "err", err)
		} else if n > 0 {
			s.log.Info("family signings not confirmed in time lapsed", "count", n)
		}
		if !s.clock.wait(ctx, moved, time.Hour) {
			return
		}
	}
}

// sendAgendas enqueues each bound doctor's agenda from 07:30, checked every
// minute; the pushes' keys make it once a day however many instances run.
func (s *Server) sendAgendas(ctx context.Context) {
	done := "" // the day this instance has made its pass
	for {
		moved := s.clock.moves()
		now := s.clock.Now()
		today := now.In(flows.Shanghai).Format("2006-01-02")
		if today != done {
			pushes, err := flows.AgendaPushes(ctx, s.DB, now)
			if err == nil && len(pushes) > 0 {
				err = s.DB.Apply(ctx, storage.Changes{Pushes: pushes})
			}
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Error("doctor agendas failed", "err", err)
			case err == nil && pushes != nil:
				done = today
			}
		}
		if !s.clock.wait(ctx, moved, time.Minute) {
			return
		}
	}
}

// runSeasonal expands the seasonal calendar's due entries, every ten minutes
// (each entry by one instance once a year), gives tips held for the digest
// to residents who wrote since, and writes the digest when one is due.
func (s *Server) runSeasonal(ctx context.Context) {
	for {
		moved := s.clock.moves()
		if n, err := flows.RunSeasonal(ctx, s.DB, s.Sealer, s.clock.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("seasonal reminders failed", "err", err)
		} else if n > 0 {
			s.log.Info("seasonal reminders enqueued", "pushes", n)
		}
		if run, err := flows.RunDigest(ctx, s.DB, s.clock.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("seasonal digest failed", "err", err)
		} else if run.Messages+run.OverLimit+run.Left > 0 {
			s.log.Info("seasonal digest written", "messages", run.Messages, "tips", run.Tips, "over_limit", run.OverLimit, "left", run.Left)
		}
		if !s.clock.wait(ctx, moved, 10*time.Minute) {
			return
		}
	}
}

// refreshRollups keeps a city's team indicator totals fresh: a pass of up
// to 50 seconds every minute. A township (a few teams) keeps none.
func (s *Server) refreshRollups(ctx context.Context) {
	for {
		moved := s.clock.moves()
		run, err := flows.RefreshRollups(ctx, s.DB, s.Sealer, s.clock.Now, 50*time.Second)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("indicator rollups failed", "err", err)
		case run.Counted > 0:
			s.log.Info("indicator rollups counted", "teams", run.Counted, "still_due", run.Stale)
		}
		if !s.clock.wait(ctx, moved, time.Minute) {
			return
		}
	}
}

// daily runs a job once a day per instance, checking hourly, and again the
// next hour if a pass fails; what it did is logged as count under what.
func (s *Server) daily(ctx context.Context, what string, run func(context.Context, time.Time) (int, error)) {
	done := ""
	for {
		moved := s.clock.moves()
		today := s.clock.Now().In(flows.Shanghai).Format("2006-01-02")
		if today != done {
			if n, err := run(ctx, s.clock.Now()); err != nil {
				if ctx.Err() == nil {
					s.log.Error("daily job failed", "job", what, "err", err)
				}
			} else {
				done = today
				s.log.Info("daily job done", "job", what, "count", n)
			}
		}
		if !s.clock.wait(ctx, moved, time.Hour) {
			return
		}
	}
}

// runPersonal enqueues the day's personal reminders; their keys make each
// occasion one push however many instances run.
func (s *Server) runPersonal(ctx context.Context) {
	s.daily(ctx, "personal reminders", func(ctx context.Context, now time.Time) (int, error) {
		return flows.RunPersonal(ctx, s.DB, s.Sealer, now)
	})
}

// materialiseSlots makes every doctor's slots for the booking window, at
// start and then daily. Schedule changes make their own slots, so residents
// asking for a date only read.
func (s *Server) materialiseSlots(ctx context.Context) {
	s.daily(ctx, "slots", func(ctx context.Context, now time.Time) (int, error) {
		return flows.MaterialiseSlots(ctx, s.DB, now)
	})
}

// followUpSignRequests reminds doctors of sign requests they left
// unanswered and tells residents whose request waits long, hourly.
func (s *Server) followUpSignRequests(ctx context.Context) {
	for {
		moved := s.clock.moves()
		if _, err := flows.FollowUpSignRequests(ctx, s.DB, s.clock.Now()); err != nil && ctx.Err() == nil {
			s.log.Error("sign request follow-up failed", "err", err)
		}
		if !s.clock.wait(ctx, moved, time.Hour) {
			return
		}
	}
}

// syncTags mirrors the segments that recur into WeChat user tags, at start
// and every 10 minutes; a broadcast to a tag syncs it again before it goes.
func (s *Server) syncTags(ctx context.Context) {
	for {
		moved := s.clock.moves()
		if r, err := s.Tags.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("wechat tag sync failed", "err", err)
		} else if r.Created+r.Tagged+r.Untagged > 0 {
			s.log.Info("wechat tags synced", "tags", r.Tags, "created", r.Created, "tagged", r.Tagged, "untagged", r.Untagged)
		}
		if !s.clock.wait(ctx, moved, 10*time.Minute) {
			return
		}
	}
}
