// Package flows holds jiayi's conversations and the domain rules they
// enforce. It knows nothing of WeChat or HTTP: an Inbound goes in, replies and
// durable changes come out, so every conversation is testable as a table of
// turns.
package flows

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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
	Unheard     Kind = "unheard"     // a voice message WeChat could not recognise
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
	// NoSession says the user has no conversation state at all: new, away
	// longer than it is kept, or lost by Redis.
	NoSession bool
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
// that speech recognition adds are dropped, and so are the filler words a
// voice message starts with ("嗯，那个，1。" is "1").
func Normalize(s string) string {
	s = strings.TrimSpace(foldWidth(s))
	for {
		rest := dropLeadingFiller(s)
		if rest == s || rest == "" {
			break
		}
		s = rest
	}
	trimmed := strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSpace(r)
	})
	// A question mark stays (one): "同意？" asks, it does not answer.
	if tail := s[len(trimmed):]; strings.ContainsAny(tail, "?？") && trimmed != "" {
		return trimmed + "？"
	}
	return trimmed
}

// foldWidth turns full-width ASCII forms into ASCII.
func foldWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '！' && r <= '～': // full-width ASCII block
			return r - '！' + '!'
		case r == '　':
			return ' '
		}
		return r
	}, s)
}

// interjections are the sounds speech recognition writes before a message;
// dropped even with no comma after them.
const interjections = "嗯呃额啊哦噢喔唉诶欸哎"

// dropLeadingFiller drops one filler word from the start of a message: an
// interjection, or a filler word followed by punctuation or a space (so a
// name or an address that starts like one stays whole).
func dropLeadingFiller(s string) string {
	trimSep := func(rest string) (string, bool) {
		r, size := utf8.DecodeRuneInString(rest)
		if size == 0 || !(unicode.IsPunct(r) || unicode.IsSpace(r)) {
			return rest, false
		}
		return strings.TrimLeftFunc(rest, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSpace(r) }), true
	}
	if r, size := utf8.DecodeRuneInString(s); size > 0 && strings.ContainsRune(interjections, r) {
		rest, _ := trimSep(s[size:])
		return rest
	}
	for _, f := range phrases().Fillers {
		if rest, ok := strings.CutPrefix(s, f); ok {
			if rest, ok := trimSep(rest); ok {
				return rest
			}
		}
	}
	return s
}
