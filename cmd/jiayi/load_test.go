package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

// jiayi load signs made-up residents through whole conversations against a
// sandbox server, measuring the bare echo first with the same harness, and
// prints what each step did as JSON.
func TestLoadSignsResidentsAndMeasuresTheEcho(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "load.db")}
	web := sandboxWeb(t, env)
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "-url", web.URL, "-script", "signing", "-residents", "12", "-clients", "3", "-duration", "2m",
		"-echo", "127.0.0.1:0"}, func(k string) string { return env[k] }, nil, &out, &errOut); code != 0 {
		t.Fatalf("load exit %d: %s", code, errOut.String())
	}
	var report struct {
		Echo, Jiayi struct {
			Sent, Served int
			Steps        map[string]struct{ Sent, Served, Late, Wrong, Errors int }
		}
		Ratio float64 `json:"ratio_to_echo"`
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	// Every resident followed and went through the 12 steps to a contract.
	if j := report.Jiayi; j.Sent != 12*12 || j.Served != j.Sent || j.Steps["agree"].Served != 12 || j.Steps["follow"].Served != 12 {
		t.Fatalf("jiayi:\n%s", out.String())
	}
	// The echo answered the 11 text steps, each with its own words.
	if e := report.Echo; e.Sent != 12*11 || e.Served != e.Sent || report.Ratio <= 0 {
		t.Fatalf("echo:\n%s", out.String())
	}
	// A second run makes new people, who sign too.
	out.Reset()
	if code := run([]string{"load", "-url", web.URL, "-script", "signing", "-residents", "4", "-clients", "2"},
		func(k string) string { return env[k] }, nil, &out, &errOut); code != 0 || json.Unmarshal(out.Bytes(), &report) != nil ||
		report.Jiayi.Steps["agree"].Served != 4 {
		t.Fatalf("a second run: %d\n%s%s", code, out.String(), errOut.String())
	}
}

// The agree script brings new people to the check before signing, untimed,
// then times only their committing 同意.
func TestLoadTimesAgreeAlone(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "load.db")}
	web := sandboxWeb(t, env)
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "-url", web.URL, "-script", "agree", "-residents", "6", "-clients", "3", "-duration", "2m"},
		func(k string) string { return env[k] }, nil, &out, &errOut); code != 0 {
		t.Fatalf("load exit %d: %s", code, errOut.String())
	}
	var report struct {
		Ready, Jiayi struct {
			Sent, Served int
			Steps        map[string]struct{ Sent, Served int }
		}
	}
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r := report.Ready; r.Served != 6*11 || r.Steps["packages"].Served != 6 || r.Steps["agree"].Sent != 0 {
		t.Fatalf("ready:\n%s", out.String())
	}
	if j := report.Jiayi; j.Sent != 6 || j.Served != 6 || j.Steps["agree"].Served != 6 || len(j.Steps) != 1 {
		t.Fatalf("timed:\n%s", out.String())
	}
	// New people only: residents brought back could not sign again.
	if code := run([]string{"load", "-url", web.URL, "-script", "agree", "-openids", "o_again_"},
		func(k string) string { return env[k] }, nil, &out, &errOut); code != 2 {
		t.Fatalf("-openids on an agree run: exit %d", code)
	}
}

// An unknown script is named with the known ones.
func TestLoadRefusesAnUnknownScript(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"load", "-script", "dance"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 ||
		!bytes.Contains(errOut.Bytes(), []byte("agree, browse, help, open, signing")) {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}
