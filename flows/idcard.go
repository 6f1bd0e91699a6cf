package flows

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ID number problems, each re-asked with its own words.
var (
	ErrIDFormat   = errors.New("an ID number is 17 digits and a final digit or X")
	ErrIDChecksum = errors.New("the ID number's check digit does not match")
	ErrIDBirth    = errors.New("the ID number holds no real birth date")
	ErrIDFuture   = errors.New("the ID number's birth date is in the future")
)

// Person is what an ID number says about its holder.
type Person struct {
	Birth time.Time // date only, in Asia/Shanghai
	Male  bool
}

// sex is the person's sex as the residents table stores it.
func (p Person) sex() string {
	if p.Male {
		return "male"
	}
	return "female"
}

var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheckChars = "10X98765432"

// Shanghai is the time zone every date rule is computed in.
var Shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// NormalizeID upper-cases a trailing x and drops spaces people type.
func NormalizeID(s string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}

// SyntheticID makes an ID number that passes ParseID for a made-up person:
// area code 110105, the birth date, a sequence (0-999; its last digit is
// odd for a man, even for a woman) and the check digit. For sandbox and
// test data only.
func SyntheticID(birth time.Time, seq int) string {
	body := fmt.Sprintf("110105%s%03d", birth.Format("20060102"), seq%1000)
	sum := 0
	for i := range 17 {
		sum += int(body[i]-'0') * idWeights[i]
	}
	return body + string(idCheckChars[sum%11])
}

// ParseID checks a mainland resident ID number (GB 11643: 18 characters,
// ISO 7064 MOD 11-2 check digit, a real birth date not after today) and
// returns the birth date and sex it encodes.
func ParseID(id string, today time.Time) (Person, error) {
	if len(id) != 18 {
		return Person{}, ErrIDFormat
	}
	sum := 0
	for i := range 17 {
		c := id[i]
		if c < '0' || c > '9' {
			return Person{}, ErrIDFormat
		}
		sum += int(c-'0') * idWeights[i]
	}
	if last := id[17]; !(last >= '0' && last <= '9' || last == 'X') {
		return Person{}, ErrIDFormat
	}
	if id[17] != idCheckChars[sum%11] {
		return Person{}, ErrIDChecksum
	}
	birth, err := time.ParseInLocation("20060102", id[6:14], Shanghai)
	if err != nil || birth.Year() < 1900 {
		return Person{}, ErrIDBirth
	}
	if birth.After(today.In(Shanghai)) {
		return Person{}, ErrIDFuture
	}
	return Person{Birth: birth, Male: (id[16]-'0')%2 == 1}, nil
}

// StartOfDay is midnight, Asia/Shanghai, of the day a moment falls on.
func StartOfDay(t time.Time) time.Time {
	d := t.In(Shanghai)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, Shanghai)
}

// Age is the age in whole years on a day, both taken in Asia/Shanghai.
func Age(birth, on time.Time) int {
	b, o := birth.In(Shanghai), on.In(Shanghai)
	age := o.Year() - b.Year()
	if o.Month() < b.Month() || (o.Month() == b.Month() && o.Day() < b.Day()) {
		age--
	}
	return age
}
