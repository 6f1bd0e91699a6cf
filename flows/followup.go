package flows

import (
	"context"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// A sign request left unanswered is followed up: after RemindAfter its
// doctor is reminded; after EscalateAfter the resident is told it still
// waits and that the centre follows it up, and the console marks it
// overdue for the institution's staff.
const (
	RemindAfter   = 48 * time.Hour
	EscalateAfter = 5 * 24 * time.Hour
)

// FollowUpSignRequests enqueues what is due for the sign requests waiting
// at now and returns how many pushes it enqueued. The pushes' keys make
// each one once, however often and on however many instances it runs.
func FollowUpSignRequests(ctx context.Context, db *storage.DB, now time.Time) (int, error) {
	var after int64
	total := 0
	for {
		page, err := db.SignRequestsWaitingSince(ctx, now.Add(-RemindAfter), after, 500)
		if err != nil || len(page) == 0 {
			return total, err
		}
		countRows(ctx, len(page))
		var pushes []storage.Push
		for _, w := range page {
			f := SignFollowUp{Number: w.Number, DoctorID: w.DoctorID, Doctor: w.DoctorName, OpenID: w.ManagerOpenID,
				Resident: w.ResidentName, Days: int(now.Sub(w.Since) / (24 * time.Hour)), Phone: w.Phone}
			pushes = append(pushes, f.Reminder())
			if now.Sub(w.Since) >= EscalateAfter && w.ManagerOpenID != "" {
				pushes = append(pushes, f.Waiting())
			}
		}
		if err := db.Apply(ctx, storage.Changes{Pushes: pushes}); err != nil {
			return total, err
		}
		total += len(pushes)
		after = page[len(page)-1].ContractID
	}
}
