// Package flows holds jiayi's conversations and the domain rules they
// enforce. It knows nothing of WeChat or HTTP: an Inbound goes in, replies and
// durable changes come out, so every conversation is testable as a table of
// turns.
package flows

import (
	"strings"
	"time"
	"unicode"

	"github.com/jiayi-health/jiayi/storage"
)

// Kind says what a resident did.
type Kind string

const (
	Text        Kind = "text"        // typed, or spoken and recognised by WeChat
	Click       Kind = "click"       // a menu button; Key holds its key
	Scan        Kind = "scan"        // a QR code scanned while following; Scene holds it
	Subscribe   Kind = "subscribe"   // followed the account, maybe through a QR code
	Unsubscribe Kind = "unsubscribe" // unfollowed
	Unsupported Kind = "unsupported" // a picture, video, location, link, …
	Activity    Kind = "activity"    // did something that needs no answer (opened a menu link)
)

// Inbound is one normalised message from a resident.
type Inbound struct {
	OpenID string
	Kind   Kind
	Text   string    // Text: what they typed or said
	Key    string    // Click: the menu key
	Scene  string    // Scan, Subscribe: the QR scene, if any
	At     time.Time // when WeChat received it
}

// Outcome is what one turn produced: everything the bot says in its one
// passive reply, and the changes Handle made durable before returning.
type Outcome struct {
	Replies []string
	Changes storage.Changes
}

// Reply joins the turn's replies into the one passive reply WeChat allows.
func (o Outcome) Reply() string {
	return strings.Join(o.Replies, "\n\n")
}

// Normalize makes typed and spoken input comparable: full-width letters and
// digits become ASCII, surrounding spaces and the sentence-final punctuation
// that speech recognition adds are dropped.
func Normalize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= '！' && r <= '～': // full-width ASCII block
			return r - '！' + '!'
		case r == '　':
			return ' '
		}
		return r
	}, s)
	return strings.TrimRightFunc(strings.TrimSpace(s), func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSpace(r)
	})
}
