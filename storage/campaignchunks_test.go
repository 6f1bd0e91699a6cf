package storage_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A campaign's residents are split by ID into chunks: each is claimed by
// one instance at a time, taken over when its instance dies, and the
// campaign is finished, with every chunk's pushes, only by whoever
// finishes the last.
func TestCampaignChunks(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		community := signedResidents(t, db, 5)
		now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
		if finished, err := db.StartCampaign(ctx, "seasonal:snow", 2026, now, 2, storage.ByResident); finished || err != nil {
			t.Fatalf("start: finished %v, %v", finished, err)
		}
		if finished, err := db.StartCampaign(ctx, "seasonal:snow", 2026, now.Add(time.Second), 2, storage.ByResident); finished || err != nil {
			t.Fatalf("second instance's start: finished %v, %v", finished, err)
		}
		var got []storage.CampaignChunk
		for {
			c, ok, err := db.ClaimChunk(ctx, "seasonal:snow", 2026, now, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, c)
		}
		if len(got) != 3 {
			t.Fatalf("5 residents in chunks of 2 made %d chunks, want 3 (made once by two starts): %+v", len(got), got)
		}
		// Every resident is in exactly one chunk, the last open-ended.
		seenIn := map[int64]int{}
		for _, c := range got {
			page, err := db.SeasonalRecipients(ctx, c.FirstID, c.LastID, 100)
			if err != nil {
				t.Fatal(err)
			}
			if c.Chunk < 2 && len(page) != 2 {
				t.Fatalf("chunk %+v holds %d residents, want 2", c, len(page))
			}
			for _, r := range page {
				seenIn[r.ResidentID]++
			}
		}
		if len(seenIn) != 5 {
			t.Fatalf("the chunks hold %d residents, want 5: %v", len(seenIn), seenIn)
		}
		for id, n := range seenIn {
			if n != 1 {
				t.Fatalf("resident %d in %d chunks", id, n)
			}
		}
		signResident(t, db, 6, "o_c6", community, nil, "1950-01-01") // signs while the campaign runs
		if page, _ := db.SeasonalRecipients(ctx, got[2].FirstID, got[2].LastID, 100); len(page) != 2 {
			t.Fatalf("the open-ended last chunk holds %d residents, want 2", len(page))
		}

		db.FinishChunk(ctx, "seasonal:snow", 2026, got[0].Chunk, 4, now.Add(time.Minute))
		db.FinishChunk(ctx, "seasonal:snow", 2026, got[1].Chunk, 3, now.Add(time.Minute))
		if done, err := db.FinishChunkedCampaign(ctx, "seasonal:snow", 2026, now.Add(time.Minute)); done || err != nil {
			t.Fatalf("finished with a chunk still being expanded: %v %v", done, err)
		}
		if _, ok, _ := db.ClaimChunk(ctx, "seasonal:snow", 2026, now.Add(time.Minute), time.Hour); ok {
			t.Fatal("a chunk being expanded was claimed again")
		}
		again, ok, err := db.ClaimChunk(ctx, "seasonal:snow", 2026, now.Add(2*time.Hour), time.Hour)
		if !ok || err != nil || again.Chunk != got[2].Chunk {
			t.Fatalf("the chunk of an instance that died is not taken over: %+v %v %v", again, ok, err)
		}
		db.FinishChunk(ctx, "seasonal:snow", 2026, again.Chunk, 2, now.Add(2*time.Hour))
		if done, err := db.FinishChunkedCampaign(ctx, "seasonal:snow", 2026, now.Add(2*time.Hour)); !done || err != nil {
			t.Fatalf("the last chunk did not finish the campaign: %v %v", done, err)
		}
		if done, _ := db.FinishChunkedCampaign(ctx, "seasonal:snow", 2026, now.Add(3*time.Hour)); done {
			t.Fatal("a campaign finished twice")
		}
		if finished, err := db.StartCampaign(ctx, "seasonal:snow", 2026, now.Add(3*time.Hour), 2, storage.ByResident); !finished || err != nil {
			t.Fatalf("a finished campaign starts again: %v %v", finished, err)
		}
		reach, ok, err := db.CampaignThrough(ctx, "seasonal:snow", 2026)
		if !ok || err != nil || !reach.Through.Equal(now) {
			t.Fatalf("through %v (%v %v), want the campaign's start %v", reach.Through, ok, err, now)
		}
		var pushes int
		storagetest.SQL(t, db).Get(&pushes, `SELECT pushes FROM campaigns WHERE code = 'seasonal:snow'`)
		if pushes != 9 {
			t.Fatalf("the campaign counts %d pushes, want its chunks' 9", pushes)
		}
	})
}

// Instances claiming at once each get different chunks, every one once.
func TestCampaignChunksClaimedConcurrently(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		signedResidents(t, db, 40)
		now := time.Now()
		if _, err := db.StartCampaign(ctx, "seasonal:snow", 2026, now, 1, storage.ByResident); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		claimed := map[int]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					c, ok, err := db.ClaimChunk(ctx, "seasonal:snow", 2026, now, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					claimed[c.Chunk]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(claimed) != 40 {
			t.Fatalf("%d chunks claimed, want 40", len(claimed))
		}
		for k, n := range claimed {
			if n != 1 {
				t.Fatalf("chunk %d claimed %d times", k, n)
			}
		}
	})
}

// Two campaigns over the same residents claim a chunk together when its
// residents match and no one is expanding the other's.
func TestCampaignsClaimTheSameChunkTogether(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		signedResidents(t, db, 3)
		now := time.Now()
		for _, code := range []string{"seasonal:a", "seasonal:b"} {
			if _, err := db.StartCampaign(ctx, code, 2026, now, 2, storage.ByResident); err != nil {
				t.Fatal(err)
			}
		}
		first, ok, err := db.ClaimChunk(ctx, "seasonal:a", 2026, now, time.Hour)
		if !ok || err != nil {
			t.Fatal(ok, err)
		}
		if same, err := db.ClaimSameChunk(ctx, "seasonal:b", 2026, first, now, time.Hour); !same || err != nil {
			t.Fatalf("the other campaign's same chunk: %v %v", same, err)
		}
		if same, _ := db.ClaimSameChunk(ctx, "seasonal:b", 2026, first, now, time.Hour); same {
			t.Fatal("a chunk being expanded was claimed again")
		}
		other := first
		other.Chunk, other.LastID = 1, first.LastID+2
		if same, _ := db.ClaimSameChunk(ctx, "seasonal:b", 2026, other, now, time.Hour); same {
			t.Fatal("a chunk of other residents was claimed as the same")
		}
		if c, ok, _ := db.ClaimChunk(ctx, "seasonal:b", 2026, now, time.Hour); !ok || c.Chunk != 1 {
			t.Fatalf("the other campaign's next chunk: %+v %v", c, ok)
		}
	})
}

// signedResidents signs n residents, o_c1 to o_cN, in the first community,
// which it returns.
func signedResidents(t *testing.T, db *storage.DB, n int) int64 {
	t.Helper()
	community := seedOrganisation(t, db)[0]
	for i := 1; i <= n; i++ {
		signResident(t, db, i, fmt.Sprintf("o_c%d", i), community, nil, "1950-01-01")
	}
	return community
}
