package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// Readings are what a doctor measured at a visit: blood pressure (mmHg)
// and fasting blood glucose (mmol/L). They are health data: sealed at rest,
// never logged, shown only to staff who care for the resident.
type Readings struct {
	Systolic  int     `json:"systolic,omitempty"`
	Diastolic int     `json:"diastolic,omitempty"`
	Glucose   float64 `json:"glucose,omitempty"`
}

// Empty reports whether nothing was measured.
func (r Readings) Empty() bool { return r.Systolic == 0 && r.Glucose == 0 }

// Control is judged as the national basic public-health service standard
// (国家基本公共卫生服务规范 第三版) judges a follow-up: blood pressure
// controlled below 140/90 mmHg, fasting glucose below 7.0 mmol/L.
const (
	controlledSystolic  = 140
	controlledDiastolic = 90
	controlledGlucose   = 7.0
)

// BPControlled reports a blood pressure below 140/90.
func (r Readings) BPControlled() bool {
	return r.Systolic > 0 && r.Systolic < controlledSystolic && r.Diastolic < controlledDiastolic
}

// GlucoseControlled reports a fasting glucose below 7.0.
func (r Readings) GlucoseControlled() bool { return r.Glucose > 0 && r.Glucose < controlledGlucose }

// unitsAndCommas are what may stand beside readings: their units and the
// commas between them.
var unitsAndCommas = strings.NewReplacer("mmHg", "", "mmol/L", "", "，", "", ",", "", "；", "", ";", "", "、", "")

var (
	bpWords      = regexp.MustCompile(`血压\s*[:：]?\s*(\d{2,3})\s*[/／]\s*(\d{2,3})`)
	glucoseWords = regexp.MustCompile(`血糖\s*[:：]?\s*(\d{1,2}(?:\.\d{1,2})?)`)
)

// ParseReadings reads "血压 135/85", "血糖 6.8" or both, as a doctor types
// them after 完成 N or in the console. Anything else there, or a value no
// living person has, is an error saying how to write it.
func ParseReadings(text string) (Readings, error) {
	var r Readings
	rest := strings.TrimSpace(text)
	if m := bpWords.FindStringSubmatch(rest); m != nil {
		r.Systolic, _ = strconv.Atoi(m[1])
		r.Diastolic, _ = strconv.Atoi(m[2])
		rest = strings.Replace(rest, m[0], "", 1)
	}
	if m := glucoseWords.FindStringSubmatch(rest); m != nil {
		r.Glucose, _ = strconv.ParseFloat(m[1], 64)
		rest = strings.Replace(rest, m[0], "", 1)
	}
	if strings.TrimSpace(unitsAndCommas.Replace(rest)) != "" {
		return Readings{}, &Refusal{Reason: "读数请写成“血压 135/85”或“血糖 6.8”"}
	}
	return r, r.Check()
}

// Check refuses a value no living person has, saying how to write it.
func (r Readings) Check() error {
	switch {
	case r.Systolic < 0 || r.Diastolic < 0 || r.Glucose < 0 || (r.Systolic == 0) != (r.Diastolic == 0):
		return &Refusal{Reason: "血压须写收缩压和舒张压，如 135/85"}
	case r.Systolic != 0 && (r.Systolic < 60 || r.Systolic > 260 || r.Diastolic < 30 || r.Diastolic > 160 || r.Diastolic >= r.Systolic):
		return &Refusal{Reason: "血压读数不在合理范围，请核对（收缩压/舒张压，如 135/85）"}
	case r.Glucose != 0 && (r.Glucose < 1 || r.Glucose > 35):
		return &Refusal{Reason: "血糖读数不在合理范围，请核对（单位 mmol/L，如 6.8）"}
	}
	return nil
}

const (
	readingsField     = "readings"
	bpClassField      = "bp_class"
	glucoseClassField = "glucose_class"
)

// sealReadings seals readings for the visit's row, with their classes;
// none seals to "".
func sealReadings(s *storage.Sealer, r Readings) (storage.SealedReadings, error) {
	if r.Empty() {
		return storage.SealedReadings{}, nil
	}
	plain, _ := json.Marshal(r)
	sealed, err := s.Seal(readingsField, string(plain))
	bp, glucose := readingClasses(s, r)
	return storage.SealedReadings{Sealed: sealed, BPClass: bp, GlucoseClass: glucose}, err
}

// readingClasses are the keyed hashes that say whether each reading was
// controlled, "" for one not taken: the control rates count them in the
// database without opening anyone's readings.
func readingClasses(s *storage.Sealer, r Readings) (bp, glucose string) {
	class := func(field string, controlled bool) string {
		if controlled {
			return s.Hash(field, "controlled")
		}
		return s.Hash(field, "uncontrolled")
	}
	if r.Systolic > 0 {
		bp = class(bpClassField, r.BPControlled())
	}
	if r.Glucose > 0 {
		glucose = class(glucoseClassField, r.GlucoseControlled())
	}
	return bp, glucose
}

// ClassifyLegacyReadings classes the readings recorded before classes were
// kept, at start; it returns how many visits it classed.
func ClassifyLegacyReadings(ctx context.Context, db *storage.DB, s *storage.Sealer) (int, error) {
	n := 0
	for {
		rows, err := db.UnclassedReadings(ctx, 500)
		if err != nil || len(rows) == 0 {
			return n, err
		}
		for _, row := range rows {
			r, err := openReadings(s, row.Sealed)
			if err != nil {
				return n, fmt.Errorf("flows.ClassifyLegacyReadings: visit %d: %w", row.ID, err)
			}
			bp, glucose := readingClasses(s, r)
			if err := db.ClassReadings(ctx, row, bp, glucose); err != nil {
				return n, err
			}
			n++
		}
	}
}

// openReadings opens a visit's sealed readings.
func openReadings(s *storage.Sealer, sealed string) (Readings, error) {
	var r Readings
	if sealed == "" {
		return r, nil
	}
	plain, err := s.Open(readingsField, sealed)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal([]byte(plain), &r)
}
