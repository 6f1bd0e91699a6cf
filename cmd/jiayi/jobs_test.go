package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// jiayi jobs run --once runs every background job on a seeded database and
// says what each did: the seasonal calendar's 大雪 entries reach residents
// who have not written lately, whose tips the digest on the 16th then
// takes, once.
func TestJobsRunOnceOnASeededDatabase(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": strings.Repeat("cd", 32)}
		getenv := func(k string) string { return env[k] }
		var out, errOut bytes.Buffer
		if code := run([]string{"demo", "seed", "--residents", "600", "--now", "2026-12-01T12:00:00+08:00"}, getenv, nil, &out, &errOut); code != 0 {
			t.Fatalf("seed: %d %s", code, errOut.String())
		}
		jobs := func(at string) map[string]flows.JobRun {
			t.Helper()
			out.Reset()
			if code := run([]string{"jobs", "run", "--once", "--now", at}, getenv, nil, &out, &errOut); code != 0 {
				t.Fatalf("jobs at %s: %d %s", at, code, errOut.String())
			}
			var got struct{ Jobs map[string]flows.JobRun }
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("%s: %v", out.String(), err)
			}
			return got.Jobs
		}
		snow := jobs("2026-12-08T09:05:00+08:00") // 大雪 began on the 7th
		if snow["personal"].Rows < 600 || snow["seasonal"].Rows < 600 || snow["seasonal"].Pushes == 0 ||
			snow["digest"].Rows != 0 || snow["tags"].Skipped == "" {
			t.Fatalf("on the 8th: %+v", snow)
		}
		if again := jobs("2026-12-08T09:15:00+08:00"); again["seasonal"].Pushes != 0 {
			t.Fatalf("the calendar ran twice: %+v", again["seasonal"])
		}
		digest := jobs("2026-12-16T10:05:00+08:00")
		if digest["digest"].Rows != snow["seasonal"].Pushes || digest["digest"].Pushes == 0 {
			t.Fatalf("the digest took %+v of %d tips", digest["digest"], snow["seasonal"].Pushes)
		}
		if again := jobs("2026-12-16T10:15:00+08:00"); again["digest"].Rows != 0 {
			t.Fatalf("the digest ran twice: %+v", again["digest"])
		}
		if code := run([]string{"jobs", "run"}, getenv, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--once") {
			t.Fatalf("without --once: %d", code)
		}
	})
}
