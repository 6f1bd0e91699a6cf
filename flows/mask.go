package flows

import (
	"context"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// MaskID shows an ID number as its first four and last four characters:
// 3203**********1234.
func MaskID(id string) string {
	if len(id) < 8 {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + strings.Repeat("*", len(id)-8) + id[len(id)-4:]
}

// MaskPhone shows a mobile number as 138****5678 and a landline as
// 053*****6666: the last four, which staff search by, and no more of the
// local number.
func MaskPhone(phone string) string {
	switch {
	case len(phone) == 11 && phone[0] == '1':
		return phone[:3] + "****" + phone[7:]
	case len(phone) >= 10:
		return phone[:3] + strings.Repeat("*", len(phone)-7) + phone[len(phone)-4:]
	}
	return strings.Repeat("*", len(phone))
}

// maskedOf opens a sealed ID number and phone and masks them.
func maskedOf(s *storage.Sealer, idSealed, phoneSealed string) (string, string, error) {
	id, err := s.Open("id_number", idSealed)
	if err != nil {
		return "", "", err
	}
	phone := ""
	if phoneSealed != "" { // signed at the desk without a phone
		if phone, err = s.Open("phone", phoneSealed); err != nil {
			return "", "", err
		}
	}
	return MaskID(id), MaskPhone(phone), nil
}

// MaskLegacyResidents fills the masked ID number and phone of residents
// signed before they were kept; the server runs it at start. It returns how
// many it filled.
func MaskLegacyResidents(ctx context.Context, db *storage.DB, s *storage.Sealer) (int, error) {
	rows, err := db.UnmaskedResidents(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		id, phone, err := maskedOf(s, r.IDSealed, r.PhoneSealed)
		if err != nil {
			return 0, err
		}
		if err := db.SetResidentMasks(ctx, r.ID, id, phone); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}
