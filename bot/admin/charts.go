package admin

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/jiayi-health/jiayi/flows"
)

// A chart is drawn on the server as inline SVG: no script, no library, no
// CDN, and it prints.
const (
	chartWidth, chartHeight = 560, 180
	chartLeft, chartBottom  = 36, 28
)

// barChart draws one bar per month; a month without a value (nil) has no
// bar. max is the scale's top (0: the largest value).
func barChart(title, unit string, labels []string, values []*float64, max float64) template.HTML {
	if max == 0 {
		for _, v := range values {
			if v != nil && *v > max {
				max = *v
			}
		}
	}
	if max == 0 {
		max = 1
	}
	var b strings.Builder
	plotW, plotH := float64(chartWidth-chartLeft-8), float64(chartHeight-chartBottom-16)
	fmt.Fprintf(&b, `<svg class="chart" role="img" viewBox="0 0 %d %d" width="100%%" style="max-width:%dpx"><title>%s</title>`,
		chartWidth, chartHeight, chartWidth, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="12">%s</text>`, chartLeft, template.HTMLEscapeString(title))
	top := 16.0
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#9fb3c8"/>`, chartLeft, top+plotH, chartWidth-8, top+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-size="10" text-anchor="end">%s</text>`, chartLeft-4, top+8, trim(max)+unit)
	fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-size="10" text-anchor="end">0</text>`, chartLeft-4, top+plotH)
	n := max1(len(values))
	slot := plotW / float64(n)
	every := (n + 11) / 12 // at most 12 labels
	for i, v := range values {
		x := float64(chartLeft) + slot*float64(i)
		if v != nil {
			h := plotH * *v / max
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2f6fab"><title>%s：%s%s</title></rect>`,
				x+slot*0.15, top+plotH-h, slot*0.7, h, labels[i], trim(*v), unit)
		}
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, x+slot/2, chartHeight-10, labels[i])
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built from numbers and escaped text only
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func trim(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0") }

// monthCharts are the indicators page's charts: signings, visits and
// satisfaction by month.
func monthCharts(months []flows.Month) []template.HTML {
	labels := make([]string, len(months))
	signings, visits, satisfaction := make([]*float64, len(months)), make([]*float64, len(months)), make([]*float64, len(months))
	for i, m := range months {
		labels[i] = m.Month[2:]
		s, v := float64(m.Signings), float64(m.Visits)
		signings[i], visits[i], satisfaction[i] = &s, &v, m.Satisfaction
	}
	return []template.HTML{
		barChart("每月新签约（人）", "", labels, signings, 0),
		barChart("每月完成就诊（次）", "", labels, visits, 0),
		barChart("每月满意度（%）", "%", labels, satisfaction, 100),
	}
}
