package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jiayi-health/jiayi/bot/load"
	"github.com/jiayi-health/jiayi/bot/wechat"
)

const loadUsage = `usage: jiayi load [-url URL[,URL…]] [-script help|browse|signing|agree|open] [-residents N]
                  [-clients C | -rate R] [-duration D] [-openids PREFIX] [-echo ADDR] [-late-wait D]

load drives made-up residents through whole conversations against one or
more running jiayi instances, the way WeChat delivers their messages:
signed with JIAYI_WECHAT_TOKEN, encrypted when JIAYI_WECHAT_AES_KEY is set,
each with its own MsgId. A reply counts as served only when it is the
expected answer. With -echo it first measures, with the same harness, a
bare silenceper/wechat webhook that only checks, parses and echoes, served
by this process on ADDR: the ceiling a webhook reaches on the machine.
It prints one JSON object, and exits 1 when nothing was served.

`

// loadReport is what `jiayi load` prints.
type loadReport struct {
	Script string       `json:"script"`
	Echo   *load.Result `json:"echo,omitempty"`
	// Ready is the untimed run that brought the residents to the timed
	// step (the agree script).
	Ready *load.Result `json:"ready,omitempty"`
	Jiayi *load.Result `json:"jiayi"`
	// Ratio is jiayi's served messages a second over the echo's.
	Ratio float64 `json:"ratio_to_echo,omitempty"`
	// LateDelivered counts the messages answered "success" whose reply
	// then arrived as a customer-service message (sandbox servers only).
	LateDelivered *int `json:"late_delivered,omitempty"`
}

func loadCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	urls := fs.String("url", defaultSimURL(getenv("JIAYI_ADDR")), "the running jiayi instances, comma-separated; the default is JIAYI_ADDR's")
	scriptName := fs.String("script", "help", "the conversation: "+strings.Join(scriptNames(), ", "))
	residents := fs.Int("residents", 20000, "how many different residents")
	clients := fs.Int("clients", 32, "residents talking at once")
	rate := fs.Float64("rate", 0, "messages a second, whatever the answers (default: each client as fast as it is answered)")
	duration := fs.Duration("duration", 20*time.Second, "how long to run (a signing run also ends when every resident has signed; agree's untimed part runs until every resident is ready, not counted)")
	prefix := fs.String("openids", "", "the residents' openids start with this (default: new ones each run); give the same to talk again as the same residents")
	lateWait := fs.Duration("late-wait", time.Minute, "how long to look for the replies answered \"success\" to arrive as pushes (sandbox servers)")
	echo := fs.String("echo", "", "serve the bare echo webhook on this address (e.g. 127.0.0.1:18090) and measure it first")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "jiayi load: flags only (did you mean -script %s?); jiayi load -h for them\n", fs.Arg(0))
		return 2
	}
	for _, u := range strings.Split(*urls, ",") {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			fmt.Fprintf(stderr, "jiayi load: -url %q is not an address such as http://127.0.0.1:8080\n", u)
			return 2
		}
	}
	script, ok := load.Scripts[*scriptName]
	if !ok {
		fmt.Fprintf(stderr, "jiayi load: no script %q; known: %s\n", *scriptName, strings.Join(scriptNames(), ", "))
		return 2
	}
	signer := wechat.Signer{Token: cmp.Or(getenv("JIAYI_WECHAT_TOKEN"), "jiayi"),
		AppID: cmp.Or(getenv("JIAYI_WECHAT_APPID"), "wxsandbox"), AESKey: getenv("JIAYI_WECHAT_AES_KEY")}
	if signer.AESKey != "" && !wechat.ValidAESKey(signer.AESKey) {
		fmt.Fprintln(stderr, "jiayi load: JIAYI_WECHAT_AES_KEY must be the 43-character EncodingAESKey the server has")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// A run's residents are new people: their openids are made from the
	// millisecond it started.
	run := time.Now().UnixMilli()
	opts := load.Options{Targets: strings.Split(*urls, ","), Signer: signer, Script: script.Script, Cycle: script.Cycle,
		Residents: *residents, Clients: *clients, Rate: *rate, Duration: *duration, OpenIDs: cmp.Or(*prefix, fmt.Sprintf("o_load_%x_", run))}
	if *scriptName == "signing" || script.Ready != nil {
		if *prefix != "" {
			fmt.Fprintf(stderr, "jiayi load: -script %s makes new people each time; -openids would bring back residents who signed already\n", *scriptName)
			return 2
		}
		// Made-up people differ up to IDNumber's 18 million; a run takes a
		// random stretch of them, so two runs against one database rarely
		// share one (a shared one answers "already signed": not served).
		if *residents > load.People/10 {
			fmt.Fprintf(stderr, "jiayi load: a signing run takes at most %d residents\n", load.People/10)
			return 2
		}
		salt := rand.IntN(load.People - *residents)
		if script.Ready == nil {
			opts.Script = load.Signing(salt)
		} else {
			opts.Script = script.Ready(salt)
		}
	}
	report := loadReport{Script: *scriptName}
	if script.Ready != nil {
		ready, ok := readyResidents(ctx, opts, stderr)
		report.Ready = ready
		if !ok {
			out, _ := json.MarshalIndent(report, "", "  ")
			fmt.Fprintln(stdout, string(out))
			return 1
		}
		opts.Script = script.Script
	}
	if *echo != "" {
		res, err := measureEcho(ctx, *echo, opts)
		if err != nil {
			fmt.Fprintln(stderr, "jiayi load:", err)
			return 2
		}
		report.Echo = res
	}
	res, err := load.Run(ctx, opts)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi load:", err)
		return 2
	}
	report.Jiayi = res
	if report.Echo != nil && report.Echo.Throughput > 0 {
		report.Ratio = float64(int(100*res.Throughput/report.Echo.Throughput+0.5)) / 100
	}
	if len(res.Late) > 0 {
		report.LateDelivered = lateDelivered(ctx, res.Late, *lateWait)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Fprintln(stdout, string(out))
	if res.Served == 0 {
		fmt.Fprintln(stderr, "jiayi load: nothing was served; the steps' examples say what came back instead")
		return 1
	}
	return 0
}

// readyResidents runs the untimed part of a script: each resident once,
// as fast as the clients are answered, for as long as it takes. Every one
// must get there, or the timed run would measure the wrong answers.
func readyResidents(ctx context.Context, o load.Options, stderr io.Writer) (*load.Result, bool) {
	o.Rate, o.Duration = 0, time.Hour
	o.Clients = max(1, min(o.Clients, o.Residents/2)) // the timed part may run at a rate, with few residents
	res, err := load.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi load:", err)
		return nil, false
	}
	if want := o.Residents * len(o.Script(0)); res.Served != want {
		fmt.Fprintf(stderr, "jiayi load: %d of %d messages bringing the residents to the timed step were served; the \"ready\" steps' examples say what came back instead\n", res.Served, want)
		return res, false
	}
	return res, true
}

func scriptNames() []string {
	names := make([]string, 0, len(load.Scripts))
	for n := range load.Scripts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// measureEcho serves the bare echo on addr and runs the same load against
// it, each text answered by itself.
func measureEcho(ctx context.Context, addr string, o load.Options) (*load.Result, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the echo cannot listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: load.Echo(o.Signer.Token, o.Signer.AppID, o.Signer.AESKey), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	o.Targets = []string{"http://" + ln.Addr().String()}
	script := o.Script
	o.Script = func(i int) []load.Step { return load.Echoed(script(i)) }
	o.OpenIDs += "echo_"
	return load.Run(ctx, o)
}

// lateDelivered counts the late replies that reached their resident as a
// push: for each resident, as many as the pushes in their sandbox outbox
// that hold the expected words, up to their late replies. It looks again
// every 5 s until all have come or wait has passed (a busy instance works
// through a burst's queued messages at its own pace); nil when the servers
// are not sandboxes.
func lateDelivered(ctx context.Context, lates []load.LateReply, wait time.Duration) *int {
	type who struct{ target, openID string }
	want := map[who][]string{}
	for _, l := range lates {
		k := who{strings.TrimRight(l.Target, "/"), l.OpenID}
		want[k] = append(want[k], l.Step.Expect)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	count := func() (int, bool) {
		n := 0
		for k, expects := range want {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.target+"/sandbox/outbox?to="+url.QueryEscape(k.openID), nil)
			resp, err := client.Do(req)
			if err != nil {
				continue // counted as not delivered; looked at again
			}
			var pushes []struct{ Text string }
			err = json.NewDecoder(resp.Body).Decode(&pushes)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return 0, false
			}
			if err != nil {
				continue
			}
			used := make([]bool, len(pushes))
			for _, expect := range expects {
				for i, p := range pushes {
					if !used[i] && strings.Contains(p.Text, expect) {
						used[i] = true
						n++
						break
					}
				}
			}
		}
		return n, true
	}
	deadline := time.Now().Add(wait)
	for {
		n, sandbox := count()
		if !sandbox {
			return nil
		}
		if n == len(lates) || time.Now().After(deadline) || ctx.Err() != nil {
			return &n
		}
		time.Sleep(5 * time.Second)
	}
}
