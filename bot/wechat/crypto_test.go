package wechat

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

type vector struct {
	Token, Timestamp, Nonce, Encrypt, Plaintext string
	AESKey                                      string `json:"encoding_aes_key"`
	AppID                                       string `json:"app_id"`
	MsgSignature                                string `json:"msg_signature"`
}

func loadVector(t *testing.T) vector {
	t.Helper()
	b, err := os.ReadFile(sharedTestdata(t, "wechat-crypto-vector.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// The official sample is from 2014: the signer gets the sample's own clock.
func vectorSigner(v vector) Signer {
	ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
	return Signer{Token: v.Token, AppID: v.AppID, AESKey: v.AESKey, Now: func() time.Time { return time.Unix(ts+2, 0) }}
}

func TestOfficialVectorDecrypts(t *testing.T) {
	v := loadVector(t)
	s := vectorSigner(v)
	plain, err := s.Decrypt(v.MsgSignature, v.Timestamp, v.Nonce, v.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != v.Plaintext {
		t.Fatalf("plaintext = %q\nwant %q", plain, v.Plaintext)
	}
}

func TestOfficialVectorRefusesTampering(t *testing.T) {
	v := loadVector(t)
	s := vectorSigner(v)
	forged := []byte(v.MsgSignature)
	forged[0] ^= 1
	cases := map[string]func() error{
		"msg_signature": func() error { _, err := s.Decrypt(string(forged), v.Timestamp, v.Nonce, v.Encrypt); return err },
		"nonce":         func() error { _, err := s.Decrypt(v.MsgSignature, v.Timestamp, v.Nonce+"1", v.Encrypt); return err },
		"ciphertext":    func() error { _, err := s.Decrypt(v.MsgSignature, v.Timestamp, v.Nonce, "A"+v.Encrypt[1:]); return err },
	}
	for name, try := range cases {
		if err := try(); !errors.Is(err, errBadSignature) {
			t.Errorf("tampered %s: err %v, want errBadSignature", name, err)
		}
	}
	// The genuine sample, replayed today, is refused as stale.
	s.Now = time.Now
	if _, err := s.Decrypt(v.MsgSignature, v.Timestamp, v.Nonce, v.Encrypt); !errors.Is(err, errStale) {
		t.Errorf("replayed sample: err %v, want errStale", err)
	}
	// A signer for another account cannot read it.
	other := vectorSigner(v)
	other.AppID = "wx0000000000000000"
	if _, err := other.Decrypt(v.MsgSignature, v.Timestamp, v.Nonce, v.Encrypt); err == nil {
		t.Error("message for another AppID decrypted")
	}
}

func TestEncryptedReplyRoundTrips(t *testing.T) {
	v := loadVector(t)
	s := vectorSigner(v)
	enc, sig, ts, err := s.Encrypt([]byte("<xml>回复</xml>"), "n1")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Decrypt(sig, strconv.FormatInt(ts, 10), "n1", enc)
	if err != nil || string(plain) != "<xml>回复</xml>" {
		t.Fatalf("round trip = %q, %v", plain, err)
	}
}

func TestCheckSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := Signer{Token: "jiayi", Now: func() time.Time { return now }}
	ts := strconv.FormatInt(now.Unix(), 10)
	good := sign("jiayi", ts, "abc")
	if err := s.CheckSignature(good, ts, "abc"); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if err := s.CheckSignature(good, ts, "abd"); !errors.Is(err, errBadSignature) {
		t.Errorf("wrong nonce: %v", err)
	}
	if err := s.CheckSignature("", ts, "abc"); !errors.Is(err, errBadSignature) {
		t.Errorf("empty signature: %v", err)
	}
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	if err := s.CheckSignature(sign("jiayi", old, "abc"), old, "abc"); !errors.Is(err, errStale) {
		t.Errorf("10-minute-old request: %v", err)
	}
}

func TestValidAESKey(t *testing.T) {
	if !ValidAESKey(loadVector(t).AESKey) {
		t.Error("the official key refused")
	}
	for _, bad := range []string{"", "short", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!"} {
		if ValidAESKey(bad) {
			t.Errorf("ValidAESKey(%q) = true", bad)
		}
	}
}
