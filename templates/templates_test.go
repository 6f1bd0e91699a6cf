package templates

import (
	"strings"
	"testing"
)

// WeChat drops a passive text reply over 2,048 bytes.
const maxReplyBytes = 2048

func TestEveryMessageRendersAndFitsOneReply(t *testing.T) {
	names := MessageNames()
	if len(names) < 5 {
		t.Fatalf("only %d messages found", len(names))
	}
	for _, name := range names {
		text, err := Message(name, "签约")
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
