package flows

import "strings"

// MaskID shows an ID number as its first four and last four characters:
// 3203**********1234.
func MaskID(id string) string {
	if len(id) < 8 {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + strings.Repeat("*", len(id)-8) + id[len(id)-4:]
}

// MaskPhone shows a mobile number as 138****5678.
func MaskPhone(phone string) string {
	if len(phone) != 11 {
		return strings.Repeat("*", len(phone))
	}
	return phone[:3] + "****" + phone[7:]
}
