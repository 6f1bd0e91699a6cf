// Package load drives simulated residents against running jiayi instances
// over HTTP, as WeChat delivers their messages (signed, encrypted in safe
// mode, each with its own MsgId), and measures what comes back: throughput,
// latency per step and the replies that were not the expected answer.
package load

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
)

// Step is one thing a resident does and how to tell the expected answer.
type Step struct {
	Name   string
	Action wechat.Action
	// Expect is a piece of the expected reply; the empty reply ("success")
	// is never expected, so a reply that went late counts as not served.
	Expect string
}

// Script is the conversation resident i has: its steps, one after another.
type Script func(i int) []Step

// Options say whom to drive and how hard.
type Options struct {
	Targets []string      // base URLs; residents are spread over them
	Signer  wechat.Signer // the account's token, AppID and (for safe mode) AES key
	Script  Script
	// Residents is how many different residents there are. With Cycle they
	// start their conversation again once all have had it; without, the run
	// ends when each has had it once.
	Residents int
	Cycle     bool
	// Clients is how many residents talk at once when Rate is zero: each
	// client sends its next message when the last is answered (the most the
	// server does). With Rate, messages go at that many a second whatever
	// the answers, each from a resident not waiting for one, however many
	// wait; a message due when every resident waits is not sent, and
	// counted (Unsent).
	Clients  int
	Rate     float64
	Duration time.Duration // the run stops after this, or when every conversation ended
	// OpenIDs is put before each resident's number to make their openid:
	// a new prefix a run makes new residents.
	OpenIDs string
	Timeout time.Duration // per request; zero: 10 s
}

// StepResult is what one step's messages did.
type StepResult struct {
	Sent    int     `json:"sent"`
	Served  int     `json:"served"`  // answered with the expected reply
	Late    int     `json:"late"`    // answered "success": the reply, if any, comes as a push
	Wrong   int     `json:"wrong"`   // answered, but not as expected
	Errors  int     `json:"errors"`  // no answer: refused, timed out, connection failed
	P50     float64 `json:"p50_ms"`  // of the served answers
	P99     float64 `json:"p99_ms"`  //
	Max     float64 `json:"max_ms"`  //
	Example string  `json:"example"` // the first wrong answer or error, cut short
}

// Result is one run against one set of targets.
type Result struct {
	Targets    []string               `json:"targets"`
	Mode       string                 `json:"mode"` // plaintext or safe
	Clients    int                    `json:"clients,omitempty"`
	Rate       float64                `json:"rate,omitempty"`
	Seconds    float64                `json:"seconds"`
	Sent       int                    `json:"sent"`
	Served     int                    `json:"served"`
	Throughput float64                `json:"served_per_second"`
	SentRate   float64                `json:"sent_per_second"`
	Unsent     int                    `json:"unsent,omitempty"` // due at the rate when every resident waited
	Cut        int                    `json:"cut,omitempty"`    // still unanswered when the run ended
	P50        float64                `json:"p50_ms"`           // of the served answers
	P99        float64                `json:"p99_ms"`           //
	Max        float64                `json:"max_ms"`           //
	Over5s     int                    `json:"over_5s"`          // answers of any kind WeChat would not have waited for
	Steps      map[string]*StepResult `json:"steps"`
	Late       []LateReply            `json:"-"` // who was answered "success", for a later look at their pushes
}

// LateReply is a message answered "success" instead of its reply.
type LateReply struct {
	Target, OpenID string
	Step           Step
}

// sample is one answered or failed message.
type sample struct {
	step    string
	latency time.Duration
	outcome int // served, late, wrong, failed
	detail  string
}

const (
	served = iota
	late
	wrong
	failed
)

// Run drives the residents until the conversations end or the time is up.
func Run(ctx context.Context, o Options) (*Result, error) {
	switch {
	case len(o.Targets) == 0 || o.Script == nil || o.Clients < 1 || o.Duration <= 0:
		return nil, errors.New("targets, a script, clients and a duration are required")
	case o.Rate == 0 && o.Residents < 2*o.Clients:
		return nil, fmt.Errorf("%d residents for %d clients: give at least twice as many -residents as -clients, so that each client finds someone not waiting for an answer", o.Residents, o.Clients)
	case o.Residents < 1:
		return nil, errors.New("give at least one resident")
	}
	ctx, stop := context.WithTimeout(ctx, o.Duration)
	defer stop()
	// Connections are kept for as many messages as may wait at once: a
	// new connection a message would measure the machine's ports.
	idle := o.Clients
	if o.Rate > 0 {
		idle = min(o.Residents, 4096)
	}
	client := &http.Client{Timeout: cmp.Or(o.Timeout, 10*time.Second),
		Transport: &http.Transport{MaxIdleConnsPerHost: idle, IdleConnTimeout: time.Minute}}
	phones := make([]*wechat.Phone, len(o.Targets))
	for i, t := range o.Targets {
		phones[i] = &wechat.Phone{Base: t, Signer: o.Signer, HTTP: client}
	}
	r := &runner{o: o, phones: phones, residents: newPool(o)}
	start := time.Now()
	if o.Rate > 0 {
		r.open(ctx)
	} else {
		r.closed(ctx)
	}
	return r.result(time.Since(start)), nil
}

type runner struct {
	o         Options
	phones    []*wechat.Phone
	residents *pool

	unsent  atomic.Int64 // open loop: due while every resident waited
	cut     atomic.Int64 // cut off by the end of the run
	talking atomic.Int64 // open loop: messages awaiting their answer

	mu      sync.Mutex
	samples []sample
	late    []LateReply
}

// closed runs Clients residents at once, each message sent when the last
// was answered.
func (r *runner) closed(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.o.Clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, ok := r.residents.take()
				if !ok {
					return
				}
				for ctx.Err() == nil && c.next < len(c.steps) {
					r.send(ctx, c, time.Now())
				}
				r.residents.done(c)
			}
		})
	}
	wg.Wait()
}

// open sends Rate messages a second whatever the answers: each due
// message goes from a resident whose conversation waits for its next
// step, or else from one who has not started; when every resident waits
// for an answer, the message is not sent and counted.
func (r *runner) open(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / r.o.Rate)
	ready := make(chan *conversation, r.o.Residents)
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * interval)
		if wait := time.Until(due); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		var c *conversation
		select {
		case c = <-ready:
		default:
			var ok bool
			if c, ok = r.residents.take(); !ok {
				if r.residents.over() && r.talking.Load() == 0 && len(ready) == 0 {
					return // every conversation has ended
				}
				r.unsent.Add(1)
				continue
			}
		}
		r.talking.Add(1)
		wg.Go(func() {
			defer r.talking.Add(-1)
			r.send(ctx, c, due)
			if c.next < len(c.steps) {
				ready <- c
				return
			}
			r.residents.done(c)
		})
	}
}

// send sends a conversation's next step and records how it went.
func (r *runner) send(ctx context.Context, c *conversation, due time.Time) {
	step := c.steps[c.next]
	phone := r.phones[c.resident%len(r.phones)]
	reply, err := phone.Send(ctx, c.openID, step.Action)
	s := sample{step: step.Name, latency: time.Since(due)}
	switch {
	case err != nil && ctx.Err() != nil:
		r.cut.Add(1) // the run ended mid-request: not the server's doing
		c.next = len(c.steps)
		return
	case err != nil:
		s.outcome, s.detail = failed, err.Error()
		c.next = len(c.steps) // a conversation that lost its place cannot go on
	case reply == "":
		s.outcome = late
		r.mu.Lock()
		r.late = append(r.late, LateReply{Target: phone.Base, OpenID: c.openID, Step: step})
		r.mu.Unlock()
		c.next++ // the reply comes as a push; the resident reads it there
	case !strings.Contains(reply, step.Expect):
		s.outcome, s.detail = wrong, reply
		c.next = len(c.steps)
	default:
		s.outcome = served
		c.next++
	}
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

func (r *runner) result(took time.Duration) *Result {
	mode := "plaintext"
	if r.o.Signer.AESKey != "" {
		mode = "safe"
	}
	clients := r.o.Clients
	if r.o.Rate > 0 {
		clients = 0 // the rate decides, not clients
	}
	res := &Result{Targets: r.o.Targets, Mode: mode, Clients: clients, Rate: r.o.Rate, Seconds: round(took.Seconds()),
		Steps: map[string]*StepResult{}, Late: r.late}
	all := make([]time.Duration, 0, len(r.samples))
	byStep := map[string][]time.Duration{}
	for _, s := range r.samples {
		st := res.Steps[s.step]
		if st == nil {
			st = &StepResult{}
			res.Steps[s.step] = st
		}
		st.Sent++
		res.Sent++
		switch s.outcome {
		case served:
			st.Served++
			res.Served++
		case late:
			st.Late++
		case wrong:
			st.Wrong++
		case failed:
			st.Errors++
		}
		if st.Example == "" && s.detail != "" {
			st.Example = cut(s.detail, 200)
		}
		if s.latency > 5*time.Second {
			res.Over5s++
		}
		if s.outcome == served { // a fast refusal must not flatter the times
			all = append(all, s.latency)
			byStep[s.step] = append(byStep[s.step], s.latency)
		}
	}
	res.Unsent, res.Cut = int(r.unsent.Load()), int(r.cut.Load())
	res.P50, res.P99, res.Max = percentiles(all)
	for name, ls := range byStep {
		st := res.Steps[name]
		st.P50, st.P99, st.Max = percentiles(ls)
	}
	if took > 0 {
		res.Throughput = round(float64(res.Served) / took.Seconds())
		res.SentRate = round(float64(res.Sent) / took.Seconds())
	}
	return res
}

// percentiles gives the median, the 99th percentile and the maximum, in
// milliseconds.
func percentiles(ls []time.Duration) (p50, p99, top float64) {
	if len(ls) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ls)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ls)))) - 1
		return round(float64(ls[max(i, 0)].Microseconds()) / 1000)
	}
	return at(0.5), at(0.99), at(1)
}

func round(f float64) float64 { return math.Round(f*100) / 100 }

// cut shortens s to at most n runes, on one line.
func cut(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " / ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// conversation is one resident's place in their script.
type conversation struct {
	resident int
	openID   string
	steps    []Step
	next     int
}

// pool hands out residents, each from the beginning of their script, and
// never one whose conversation is still going: a resident writes again
// only once answered, as a person does.
type pool struct {
	size    int
	cycle   bool
	script  Script
	openIDs string
	n       atomic.Int64
	busy    []atomic.Bool
}

func newPool(o Options) *pool {
	return &pool{size: o.Residents, cycle: o.Cycle, script: o.Script, openIDs: o.OpenIDs, busy: make([]atomic.Bool, o.Residents)}
}

// take is the next resident whose turn it is, or false when none is free:
// every resident has had their conversation and the run does not cycle,
// or every one not done is still talking.
func (p *pool) take() (*conversation, bool) {
	for range p.size {
		n := int(p.n.Add(1) - 1)
		if n >= p.size && !p.cycle {
			return nil, false
		}
		i := n % p.size
		if p.busy[i].CompareAndSwap(false, true) {
			return &conversation{resident: i, openID: fmt.Sprintf("%s%d", p.openIDs, i), steps: p.script(i)}, true
		}
	}
	return nil, false
}

// over says every resident has started their conversation (without Cycle).
func (p *pool) over() bool { return !p.cycle && int(p.n.Load()) >= p.size }

// done frees a resident whose conversation ended.
func (p *pool) done(c *conversation) { p.busy[c.resident].Store(false) }
