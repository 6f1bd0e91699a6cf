package wechat

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the webhook does. Each server has its own registry, so
// several can run in one process.
type Metrics struct {
	requests   *prometheus.CounterVec
	latency    prometheus.Histogram
	dedupeHits prometheus.Counter
	panics     prometheus.Counter
}

// NewMetrics registers the webhook's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jiayi_wechat_requests_total",
			Help: "WeChat webhook requests by message type and outcome.",
		}, []string{"type", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jiayi_wechat_request_duration_seconds",
			Help:    "Time to answer a WeChat webhook request.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 4, 5},
		}),
		dedupeHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jiayi_wechat_dedupe_hits_total",
			Help: "Retried messages answered from the dedupe store instead of being run again.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jiayi_turn_panics_total",
			Help: "Turns that panicked: each ended with the busy reply while the service went on.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.dedupeHits, m.panics)
	return m
}

// TurnPanicked counts a turn that panicked.
func (m *Metrics) TurnPanicked() { m.panics.Inc() }
