package wechat

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedTestdata finds the team's shared test data (the official crypto
// vector and the real WeChat pushes), which lives beside the repository, not
// in it: JIAYI_SHARED_TESTDATA if set, else ../shared/testdata next to this
// checkout, else /work/shared/testdata (where CI's fresh clones run). It
// fails rather than skips: these tests must not pass vacuously.
func sharedTestdata(t testing.TB, name string) string {
	t.Helper()
	candidates := []string{os.Getenv("JIAYI_SHARED_TESTDATA"), "../../../shared/testdata", "/work/shared/testdata"}
	for _, dir := range candidates {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "wechat-crypto-vector.json")); err == nil {
			return filepath.Join(dir, name)
		}
	}
	t.Fatalf("shared test data not found in %q; set JIAYI_SHARED_TESTDATA", candidates)
	return ""
}
