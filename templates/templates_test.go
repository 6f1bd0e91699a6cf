package templates

import (
	"strings"
	"testing"
)

// WeChat drops a passive text reply over 2,048 bytes.
const maxReplyBytes = 2048

// samples holds data for every message; a message without one fails the
// test below, so each new message is rendered at least once here.
var samples = map[string]any{
	"welcome": nil, "help": nil, "not_understood": nil, "unsupported": nil, "busy": nil,
	"coming_soon":        "签约",
	"refuse_min_age":     map[string]any{"Name": "老年人健康管理包", "Age": 65},
	"refuse_max_age":     map[string]any{"Name": "儿童服务包", "Age": 6},
	"refuse_groups":      map[string]any{"Name": "慢病管理包", "Groups": "高血压患者、2型糖尿病患者"},
	"refuse_requires":    map[string]any{"Name": "糖尿病增值包", "Requires": "基本公共卫生服务包或基本医疗服务包"},
	"refuse_basic_count": map[string]any{"Count": 2, "Names": "基本医疗服务包、健康管理服务包"},
	"refuse_unknown":     nil,
	"refuse_twice":       "慢病管理包",
	"flow_expired":       "服务包浏览",
	"flow_cancelled":     "服务包浏览",
	"packages_reask":     14,
	"packages_help":      "detail",
	"packages_list": map[string]any{"Region": "某地", "Groups": []map[string]any{
		{"Heading": "基础服务包", "Lines": []map[string]any{{"N": 1, "Name": "基本公共卫生服务包", "ResidentPays": int64(0), "Unconfirmed": false}}},
	}},
	"package_detail": map[string]any{"N": 2, "Name": "基本医疗服务包", "Kind": "基础服务包", "Summary": "s",
		"Items": []map[string]any{{"Name": "随访", "PerYear": 4}}, "MinAge": nil, "MaxAge": nil, "Groups": "",
		"Requires": "", "TermMonths": 12, "Unconfirmed": true,
		"Local":     map[string]any{"Payers": []map[string]any{{"Name": "个人", "Fen": int64(5000)}}, "ResidentPays": int64(5000)},
		"Elsewhere": nil},
}

func TestEveryMessageRendersAndFitsOneReply(t *testing.T) {
	names := MessageNames()
	if len(names) < 5 {
		t.Fatalf("only %d messages found", len(names))
	}
	for _, name := range names {
		data, ok := samples[name]
		if !ok {
			t.Errorf("%s: no sample data in this test", name)
			continue
		}
		text, err := Message(name, data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if text == "" || len(text) > maxReplyBytes {
			t.Errorf("%s: %d bytes, want 1..%d", name, len(text), maxReplyBytes)
		}
	}
}

func TestHelpNamesTheEntryKeywords(t *testing.T) {
	for _, name := range []string{"help", "welcome", "not_understood"} {
		text, err := Message(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, kw := range []string{"签约", "服务包", "预约", "我的"} {
			if !strings.Contains(text, kw) {
				t.Errorf("%s does not name %s", name, kw)
			}
		}
	}
}

func TestUnknownMessageIsAnError(t *testing.T) {
	if _, err := Message("no_such_message", nil); err == nil {
		t.Fatal("unknown message rendered")
	}
}

func TestYuan(t *testing.T) {
	for fen, want := range map[int64]string{0: "0", 5000: "50", 5050: "50.5", 5005: "50.05", 36000: "360", 1: "0.01", -250: "-2.5"} {
		if got := Yuan(fen); got != want {
			t.Errorf("Yuan(%d) = %q, want %q", fen, got, want)
		}
	}
}
