package wechat

import (
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// systemEvents are notices WeChat sends about the account or about a
// delivery, not something a resident did: they get "success" and no turn.
var systemEvents = map[string]bool{
	"templatesendjobfinish":        true,
	"masssendjobfinish":            true,
	"publishjobfinish":             true,
	"subscribe_msg_sent_event":     true,
	"qualification_verify_success": true,
	"qualification_verify_fail":    true,
	"naming_verify_success":        true,
	"naming_verify_fail":           true,
	"annual_renew":                 true,
	"verify_expired":               true,
	"kf_create_session":            true,
	"kf_close_session":             true,
	"kf_switch_session":            true,
	"update_invoice_status":        true,
}

// inbound is a parsed push: the resident's message in flows' terms, or
// nothing to act on.
type inbound struct {
	in       flows.Inbound
	dedupe   string // key WeChat's retries share
	act      bool   // false: a system notice or a device message
	typeName string // bounded label for metrics
}

// normalize turns WeChat's message into what flows understands. A voice
// message with speech recognition counts as the words said; a menu click as
// its key; a QR follow or scan carries its scene.
func normalize(m *message.MixMessage) inbound {
	msgType := strings.ToLower(string(m.MsgType))
	event := strings.ToLower(string(m.Event))
	r := inbound{typeName: metricType(msgType, event), act: true}
	r.in = flows.Inbound{OpenID: string(m.FromUserName), At: time.Unix(m.CreateTime, 0).UTC()}
	if m.MsgID != 0 {
		r.dedupe = "m" + strconv.FormatInt(m.MsgID, 10)
	} else {
		r.dedupe = "e" + strconv.FormatInt(m.CreateTime, 10) + ":" + event
	}
	switch msgType {
	case "text":
		r.in.Kind, r.in.Text = flows.Text, m.Content
	case "voice":
		// Recognition is empty (or a lone "。") when WeChat could not make
		// out the words, or recognition is off for the account.
		if flows.Normalize(m.Recognition) != "" {
			r.in.Kind, r.in.Text = flows.Text, m.Recognition
		} else {
			r.in.Kind = flows.Unheard
		}
	case "event":
		r.act = !systemEvents[event]
		switch event {
		case "subscribe":
			r.in.Kind = flows.Subscribe
			if scene, ok := strings.CutPrefix(m.EventKey, "qrscene_"); ok {
				r.in.Scene = scene
			}
		case "unsubscribe":
			r.in.Kind = flows.Unsubscribe
		case "scan":
			r.in.Kind, r.in.Scene = flows.Scan, m.EventKey
		case "click":
			r.in.Kind, r.in.Key = flows.Click, m.EventKey
		default:
			// Opening a menu link, reporting a location, a photo picker …:
			// the resident is active, but there is nothing to answer.
			r.in.Kind = flows.Activity
		}
	case "device_text", "device_event":
		r.act = false // the hardware platform, not a resident
	default:
		r.in.Kind = flows.Unsupported
	}
	return r
}

var metricTypes = map[string]bool{"text": true, "voice": true, "image": true, "video": true,
	"shortvideo": true, "location": true, "link": true, "file": true}

var metricEvents = map[string]bool{"subscribe": true, "unsubscribe": true, "scan": true,
	"click": true, "view": true, "location": true, "masssendjobfinish": true}

// metricType keeps the metric's label set small whatever WeChat sends.
func metricType(msgType, event string) string {
	switch {
	case msgType == "event" && metricEvents[event]:
		return "event_" + event
	case msgType == "event":
		return "event_other"
	case metricTypes[msgType]:
		return msgType
	default:
		return "other"
	}
}
