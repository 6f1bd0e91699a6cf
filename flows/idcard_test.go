package flows

import (
	"errors"
	"testing"
	"time"
)

// synthID builds a synthetic ID number with a valid check digit.
func synthID(area, birth, seq string) string {
	body := area + birth + seq
	sum := 0
	for i := range 17 {
		sum += int(body[i]-'0') * idWeights[i]
	}
	return body + string(idCheckChars[sum%11])
}

var today = time.Date(2026, 11, 23, 10, 0, 0, 0, Shanghai)

func TestParseID(t *testing.T) {
	id := synthID("110105", "19491231", "001")
	p, err := ParseID(id, today)
	if err != nil {
		t.Fatal(err)
	}
	if p.Birth.Format("2006-01-02") != "1949-12-31" || !p.Male || Age(p.Birth, today) != 76 {
		t.Fatalf("%s: %+v age %d", id, p, Age(p.Birth, today))
	}
	f, err := ParseID(synthID("320412", "20230601", "002"), today)
	if err != nil || f.Male || Age(f.Birth, today) != 3 {
		t.Fatalf("child: %+v %v", f, err)
	}
	wrongCheck := id[:17] + string("0123456789X"[(indexOf(id[17])+1)%11])
	cases := map[string]error{
		"":                                   ErrIDFormat,
		"12345":                              ErrIDFormat,
		id[:17] + "Y":                        ErrIDFormat,
		"11010519491231001" + "":             ErrIDFormat,
		wrongCheck:                           ErrIDChecksum,
		synthID("110105", "19490231", "001"): ErrIDBirth,  // 31 February
		synthID("110105", "18991231", "001"): ErrIDBirth,  // before 1900
		synthID("110105", "20261124", "001"): ErrIDFuture, // tomorrow
	}
	for in, want := range cases {
		if _, err := ParseID(in, today); !errors.Is(err, want) {
			t.Errorf("ParseID(%q) = %v, want %v", in, err, want)
		}
	}
	if _, err := ParseID(synthID("110105", "20261123", "001"), today); err != nil {
		t.Errorf("born today: %v", err)
	}
}

func indexOf(c byte) int {
	for i := range "0123456789X" {
		if "0123456789X"[i] == c {
			return i
		}
	}
	return 0
}

func TestAgeCountsBirthdays(t *testing.T) {
	birth := time.Date(1961, 11, 24, 0, 0, 0, 0, Shanghai)
	if Age(birth, today) != 64 {
		t.Fatalf("the day before the 65th birthday: %d", Age(birth, today))
	}
	if Age(birth, today.AddDate(0, 0, 1)) != 65 {
		t.Fatalf("on the 65th birthday: %d", Age(birth, today.AddDate(0, 0, 1)))
	}
	// 23:30 UTC on the 23rd is already the 24th in Shanghai.
	if Age(birth, time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC)) != 65 {
		t.Fatal("age not computed in Asia/Shanghai")
	}
}

func TestNormalizeID(t *testing.T) {
	if got := NormalizeID(" 11010519491231002x "); got != "11010519491231002X" {
		t.Fatalf("%q", got)
	}
}

func TestSyntheticIDPassesParseID(t *testing.T) {
	birth := time.Date(1955, 3, 2, 0, 0, 0, 0, Shanghai)
	seen := map[string]bool{}
	for seq := range 1000 {
		id := SyntheticID(birth, seq)
		p, err := ParseID(id, time.Date(2026, 12, 2, 0, 0, 0, 0, Shanghai))
		if err != nil || !p.Birth.Equal(birth) || p.Male != (seq%2 == 1) || seen[id] {
			t.Fatalf("seq %d: %s %+v %v", seq, id, p, err)
		}
		seen[id] = true
	}
	if SyntheticID(birth, 21) != "110105195503020210" { // the ID number the README's tour types
		t.Fatalf("SyntheticID(1955-03-02, 21) = %s", SyntheticID(birth, 21))
	}
}
