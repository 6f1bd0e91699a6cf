package bot

import (
	"context"
	"testing"
	"time"
)

// A turn's "last seen" held back for the buffer is written before any
// job runs, so a job asking who wrote lately sees this instance's latest
// turns (the buffer's own writer would take up to 500 ms).
func TestJobsSeeTheTurnsHeldBack(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	ctx := context.Background()
	chat(t, srv, "o_held_job", "帮助") // the session's first turn: written at once
	chat(t, srv, "o_held_job", "签约") // held back
	if _, err := srv.RunJobsOnce(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if u, err := srv.DB.WeChatUser(ctx, "o_held_job"); err != nil || u.Conversation != "signing" {
		t.Fatalf("after a job: %+v %v", u, err)
	}
}
