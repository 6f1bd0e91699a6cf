package flows

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// The residents file: contracts signed on paper or in the provincial system,
// one resident a row. Export writes the same columns.
var residentColumns = map[string]string{
	"姓名": "name", "name": "name",
	"身份证号": "id_number", "id_number": "id_number",
	"手机号": "phone", "phone": "phone",
	"社区": "community", "community": "community",
	"团队": "team", "team": "team",
	"服务包": "packages", "packages": "packages",
	"重点人群": "groups", "groups": "groups",
	"签约日期": "signed_on", "signed_on": "signed_on",
	"到期日期": "term_end", "term_end": "term_end",
	"协议号": "number", "number": "number", // export only: ignored on import
	"状态": "status", "status": "status",
}

// ResidentHeader is the header of a residents file, import and export.
var ResidentHeader = []string{"姓名", "身份证号", "手机号", "社区", "团队", "服务包", "重点人群", "签约日期", "到期日期", "协议号", "状态"}

// ResidentImport is who imports and for which institution.
type ResidentImport struct {
	Institution int64
	Actor       string // the staff member, named in each contract's consent as on paper
	DryRun      bool
	Now         time.Time
}

// ImportResidents reads a residents file and signs each row through the
// rules the chat uses (a valid ID number, one live contract, packages the
// resident may hold, the catalog's prices); the consent is recorded as given
// on paper, in the staff member's name. Every row goes in one transaction:
// any rejected row, or a dry run, writes nothing, and the report says what
// each row did or would do.
func ImportResidents(ctx context.Context, db *storage.DB, s *storage.Sealer, r io.Reader, in ResidentImport) ([]storage.ImportLine, error) {
	rows, lines, err := readCSV(r, residentColumns, "name", "id_number", "phone", "community", "team", "signed_on")
	if err != nil {
		return nil, err
	}
	catalog, err := db.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	var report []storage.ImportLine
	rejected := false
	errRollback := errors.New("roll back")
	err = db.InTx(ctx, func(tx *storage.DB) error {
		report, rejected = nil, false
		for i, row := range rows {
			nc, problem, err := residentContract(ctx, tx, s, catalog, row, nil, in)
			if err != nil {
				return err
			}
			if problem == "" {
				nc.NumberInTx = true // a dry run or a rejected row rolls every row back
				number, created, err := tx.CreateContract(ctx, nc)
				switch {
				case errors.Is(err, storage.ErrLiveContract):
					problem = "该身份证号已有生效中或待确认的签约"
				case err != nil:
					return err
				case !created:
					report = append(report, storage.ImportLine{Line: lines[i], Action: "unchanged",
						What: fmt.Sprintf("%s %s 已导入过：协议 %s", nc.Resident.Name, nc.Resident.IDMasked, number)})
				default:
					report = append(report, storage.ImportLine{Line: lines[i], Action: "create",
						What: fmt.Sprintf("%s %s，协议 %s，到期 %s", nc.Resident.Name, nc.Resident.IDMasked, number, nc.TermEnd)})
				}
			}
			if problem != "" {
				rejected = true
				report = append(report, storage.ImportLine{Line: lines[i], Action: "rejected", What: problem})
			}
		}
		if rejected || in.DryRun {
			return errRollback
		}
		return nil
	})
	switch {
	case errors.Is(err, errRollback) && rejected:
		return report, storage.ErrImportRejected
	case errors.Is(err, errRollback):
		return report, nil
	}
	return report, err
}

// residentContract turns one row into a contract to create, or says what is
// wrong with the row.
//
// place, when known, is where the resident signs; otherwise the row names
// the community and the team.
func residentContract(ctx context.Context, db *storage.DB, s *storage.Sealer, c storage.Catalog, row map[string]string,
	place *storage.Place, in ResidentImport) (storage.NewContract, string, error) {
	var nc storage.NewContract
	name := strings.ReplaceAll(row["name"], " ", "")
	if n := utf8.RuneCountInString(name); n < 2 || n > 20 || !namePattern.MatchString(name) {
		return nc, "姓名须为2到20个汉字、字母或“·”", nil
	}
	signed, err1 := readDay(row["signed_on"])
	if err1 != nil || signed.After(in.Now) {
		return nc, "签约日期须为今天或以前的日期（如 2026-03-01 或 2026/3/1）", nil
	}
	id := NormalizeID(row["id_number"])
	person, err := ParseID(id, signed)
	if err != nil {
		return nc, "身份证号不是有效的18位号码（长度、出生日期或校验位不对）", nil
	}
	// At the desk or on paper a resident may have only a landline, or no
	// phone at all; the chat always asks for a mobile.
	phone, ok := staffPhone(row["phone"])
	if !ok {
		return nc, phoneRule, nil
	}
	if place == nil {
		found, err := db.FindCommunityTeam(ctx, in.Institution, row["community"], row["team"])
		if errors.Is(err, storage.ErrNotFound) {
			return nc, fmt.Sprintf("本机构没有社区“%s”，或团队“%s”不服务该社区", row["community"], row["team"]), nil
		}
		if err != nil {
			return nc, "", err
		}
		place = &found
	}
	groups, problem := readGroups(row["groups"])
	if problem != "" {
		return nc, problem, nil
	}
	a := Applicant{Age: Age(person.Birth, signed), Groups: groups, Insured: storage.InsuredLocal}
	codes, problem := readPackages(c, row["packages"])
	if problem != "" {
		return nc, problem, nil
	}
	if err := CheckChoice(c, a, codes); err != nil {
		return nc, "服务包：" + err.Error(), nil
	}
	termEnd := signed.AddDate(1, 0, -1)
	if row["term_end"] != "" {
		end, err := readDay(row["term_end"])
		if err != nil || !end.After(signed) {
			return nc, "到期日期须晚于签约日期", nil
		}
		// A contract runs a year, as one signed in chat does; a paper one
		// may end sooner (at the year's end, say), never later.
		if latest := signed.AddDate(1, 0, 0); end.After(latest) {
			return nc, "签约期为一年：到期日期不能晚于 " + latest.Format("2006-01-02"), nil
		}
		termEnd = end
	}
	if !termEnd.After(in.Now) {
		return nc, "签约已于 " + termEnd.Format("2006-01-02") + " 到期：只导入未到期的签约", nil
	}
	sealed, err := sealResident(s, id, phone, groups)
	if err != nil {
		return nc, "", err
	}
	fees := Price(c, a, codes)
	for _, code := range codes {
		p, _ := c.Package(code)
		nc.Packages = append(nc.Packages, storage.ContractPackage{Code: code, Name: p.Name, Kind: string(p.Kind), Split: fees.Packages[code]})
	}
	sealed.Name, sealed.BirthDate, sealed.Sex, sealed.CommunityID = name, person.Birth.Format("2006-01-02"), person.sex(), place.CommunityID
	nc.Resident = sealed
	nc.RequestKey = "import:" + sealed.IDHash + ":" + signed.Format("20060102")
	nc.Day = signed.Format("060102")
	nc.TeamID, nc.DoctorID, nc.Insured, nc.TermMonths = place.TeamID, place.DoctorID, storage.InsuredLocal, 12
	nc.AgreementVersion, nc.ConsentVersion = "paper", "paper"
	nc.AgreedAt, nc.ConsentedAt = signed, signed
	nc.ConsentBy = "staff:" + in.Actor
	nc.Active, nc.TermEnd = true, termEnd.Format("2006-01-02")
	nc.Event = "imported: signed on paper, consent recorded by " + in.Actor
	return nc, "", nil
}

// landlinePattern is a fixed-line number with its area code, dashes taken out.
var landlinePattern = regexp.MustCompile(`^0\d{9,11}$`)

// phoneRule says which phones staff may record.
const phoneRule = "手机号须为以1开头的11位数字，固定电话须带区号（如 0531-88886666），也可不填"

// staffPhone reads a phone staff typed: a mobile, a landline with its area
// code (at the desk or on paper a resident may have only that), or none.
func staffPhone(typed string) (string, bool) {
	phone := strings.NewReplacer(" ", "", "-", "").Replace(typed)
	return phone, phone == "" || mobilePattern.MatchString(phone) || landlinePattern.MatchString(phone)
}

// sealResident seals an ID number, phone (if any) and declared groups for storage.
func sealResident(s *storage.Sealer, id, phone string, groups []string) (storage.NewResident, error) {
	var r storage.NewResident
	var err error
	if r.IDSealed, err = s.Seal("id_number", id); err != nil {
		return r, err
	}
	if phone != "" {
		if r.PhoneSealed, err = s.Seal("phone", phone); err != nil {
			return r, err
		}
		r.PhoneHash, r.PhoneMasked = s.Hash("phone", phone), MaskPhone(phone)
	}
	if r.GroupsSealed, err = SealGroups(s, groups); err != nil {
		return r, err
	}
	r.GroupTags = GroupTags(s, groups)
	r.IDHash, r.IDMasked, r.Relation = s.Hash("id_number", id), MaskID(id), "self"
	return r, nil
}

// readDay reads 2026-03-01, 2026/3/1 or 2026.3.1 in Asia/Shanghai.
func readDay(s string) (time.Time, error) {
	s = strings.NewReplacer("/", "-", ".", "-").Replace(strings.TrimSpace(s))
	return time.ParseInLocation("2006-1-2", s, Shanghai)
}

// readGroups reads declared priority groups by name or code.
func readGroups(cell string) ([]string, string) {
	var codes []string
	for _, g := range splitList(cell) {
		code := ""
		for _, t := range profile.Words().PriorityGroups {
			if t.Code == g || t.Name == g {
				code = t.Code
			}
		}
		if code == "" {
			return nil, fmt.Sprintf("重点人群“%s”不在本地区的重点人群名单中", g)
		}
		codes = append(codes, code)
	}
	return codes, ""
}

// readPackages reads packages by code or name; the default basic package is
// added when the row names no basic package.
func readPackages(c storage.Catalog, cell string) ([]string, string) {
	var codes []string
	basic := false
	for _, want := range splitList(cell) {
		i := slices.IndexFunc(c.Packages, func(p storage.Package) bool { return p.Code == want || p.Name == want })
		if i < 0 {
			return nil, fmt.Sprintf("服务包“%s”不在服务包目录中", want)
		}
		codes = append(codes, c.Packages[i].Code)
		basic = basic || c.Packages[i].Kind == storage.Basic
	}
	if !basic {
		for _, p := range c.Packages {
			if p.Default {
				codes = append([]string{p.Code}, codes...)
				break
			}
		}
	}
	return codes, ""
}

// exportStatus is a contract's status as the file says it.
var exportStatus = map[string]string{storage.ContractPending: "待确认", storage.ContractActive: "生效中"}

// ExportResidents writes the live contracts in scope as a residents file,
// UTF-8 with a byte-order mark so Excel opens it as such. ID numbers and
// phones are masked, and declared priority groups (health status) left out.
func ExportResidents(ctx context.Context, db *storage.DB, scope storage.Scope, w io.Writer) error {
	if _, err := io.WriteString(w, "\xef\xbb\xbf"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(ResidentHeader); err != nil {
		return err
	}
	err := db.ExportContracts(ctx, scope, func(rows []storage.ExportRow) error {
		for _, r := range rows {
			if err := cw.Write([]string{SpreadsheetSafe(r.Name), r.IDMasked, r.PhoneMasked, SpreadsheetSafe(r.Community), SpreadsheetSafe(r.Team),
				SpreadsheetSafe(strings.Join(r.Packages, ";")), "", r.SignedAt.In(Shanghai).Format("2006-01-02"), r.TermEnd.String, r.Number,
				exportStatus[r.Status]}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// SpreadsheetSafe keeps a cell typed by a resident or staff member from
// being run as a formula when the export is opened in Excel or WPS: a cell
// starting with = + - @ or a control character gets a leading apostrophe.
func SpreadsheetSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// DeskSigning is a resident a staff member signs at the desk or at home,
// for someone without a smartphone; the fields are the residents file's.
type DeskSigning struct {
	Name, IDNumber, Phone string
	CommunityID, TeamID   int64    // the team must serve the community, in the institution signing
	Packages, Groups      []string // codes or names
	// Request names the form it came from: posting the same form twice
	// (a double click, a reload) finds the first contract.
	Request string
	// OpenID is the WeChat user who manages the resident, when one is
	// known (the sandbox simulator's signed resident); empty at the desk.
	OpenID string
}

// SignAtDesk signs one resident through the rules the chat and the import
// use, active at once, the consent recorded as on paper in the staff
// member's name. It returns the contract number, or a *Refusal saying
// what to correct.
func SignAtDesk(ctx context.Context, db *storage.DB, s *storage.Sealer, d DeskSigning, in ResidentImport) (string, error) {
	if len(d.Request) < 16 {
		return "", errors.New("flows.SignAtDesk: the form's request token is missing")
	}
	catalog, err := db.Catalog(ctx)
	if err != nil {
		return "", err
	}
	place, err := db.FindPlace(ctx, d.CommunityID, d.TeamID)
	if err == nil {
		var inst int64
		if inst, err = db.InstitutionOf(ctx, storage.ThingTeam, d.TeamID); err == nil && inst != in.Institution {
			err = storage.ErrNotFound
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return "", &Refusal{Reason: "请选择本机构的社区和为其服务的团队"}
	}
	if err != nil {
		return "", err
	}
	row := map[string]string{"name": d.Name, "id_number": d.IDNumber, "phone": d.Phone, "packages": strings.Join(d.Packages, ";"),
		"groups": strings.Join(d.Groups, ";"), "signed_on": in.Now.In(Shanghai).Format("2006-01-02")}
	nc, problem, err := residentContract(ctx, db, s, catalog, row, &place, in)
	if err != nil {
		return "", err
	}
	if problem != "" {
		return "", &Refusal{Reason: problem}
	}
	nc.RequestKey = "desk:" + d.Request
	nc.Resident.ManagerOpenID = d.OpenID
	nc.Event = "signed at the desk, consent on paper recorded by " + in.Actor
	number, _, err := db.CreateContract(ctx, nc)
	if errors.Is(err, storage.ErrLiveContract) {
		return "", &Refusal{Reason: "该身份证号已有生效中或待确认的签约"}
	}
	return number, err
}
