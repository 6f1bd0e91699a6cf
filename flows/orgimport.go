package flows

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// The organisation file: one row per institution, community, doctor or
// team, in that order of dependence (rows may come in any order). The
// header row names the columns in Chinese or English; a column a kind does
// not use stays empty.
var orgColumns = map[string]string{
	"类型": "kind", "kind": "kind",
	"机构代码": "institution", "institution": "institution",
	"名称": "name", "name": "name",
	"机构类别": "institution_kind", "institution_kind": "institution_kind",
	"电话": "phone", "phone": "phone",
	"乡镇街道": "town", "town": "town",
	"常住人口": "population", "population": "population",
	"职称": "title", "title": "title",
	"负责医生": "doctor", "doctor": "doctor",
	"服务社区": "communities", "communities": "communities",
	"成员": "members", "members": "members",
	"重点人群人口": "priority_population", "priority_population": "priority_population",
	"统计日期": "counted_on", "counted_on": "counted_on",
}

// OrgHeader is the header row of an organisation file, as the console's
// template offers it.
const OrgHeader = "类型,机构代码,名称,机构类别,电话,乡镇街道,常住人口,重点人群人口,统计日期,职称,负责医生,服务社区,成员"

var orgKinds = map[string]string{"机构": "institution", "institution": "institution", "社区": "community", "村": "community",
	"community": "community", "医生": "doctor", "doctor": "doctor", "团队": "team", "team": "team"}

var institutionKinds = map[string]string{"乡镇卫生院": "township_centre", "township_centre": "township_centre",
	"社区卫生服务中心": "community_centre", "community_centre": "community_centre"}

// ImportOrganisation reads an organisation file and imports it (or, on a
// dry run, reports what importing it would do). Rows the file itself gets
// wrong are rejected with the rest; any rejection writes nothing.
//
// only, when not empty, is the one institution code the importer may touch
// (an institution's own staff); rows for any other are rejected.
func ImportOrganisation(ctx context.Context, db *storage.DB, r io.Reader, dryRun bool, actor, only string) ([]storage.ImportLine, error) {
	rows, lines, err := readCSV(r, orgColumns, "kind", "institution", "name")
	if err != nil {
		return nil, err
	}
	roles, err := TeamRoles(ctx, db)
	if err != nil {
		return nil, err
	}
	var in storage.OrgImport
	var rejected []storage.ImportLine
	reject := func(line int, format string, args ...any) {
		rejected = append(rejected, storage.ImportLine{Line: line, Action: "rejected", What: fmt.Sprintf(format, args...)})
	}
	for i, row := range rows {
		line, inst, name := lines[i], row["institution"], row["name"]
		if inst == "" || name == "" {
			reject(line, "机构代码和名称必填")
			continue
		}
		if only != "" && inst != only {
			reject(line, "机构代码 %s 不是您所在的机构（%s）", inst, only)
			continue
		}
		switch orgKinds[row["kind"]] {
		case "institution":
			kind, ok := institutionKinds[row["institution_kind"]]
			if !ok || !validCode(inst) {
				reject(line, "机构 %s：机构类别须为 乡镇卫生院 或 社区卫生服务中心，机构代码为2到32位小写字母、数字或“-”", inst)
				continue
			}
			in.Institutions = append(in.Institutions, storage.ImportRow[storage.Institution]{Line: line,
				Row: storage.Institution{Code: inst, Name: name, Kind: kind, Phone: row["phone"]}})
		case "community":
			population, err := strconv.Atoi(strings.ReplaceAll(row["population"], ",", ""))
			if row["population"] == "" {
				population, err = 0, nil
			}
			if err != nil || population < 0 || row["town"] == "" {
				reject(line, "社区 %s：乡镇街道必填，常住人口须为整数", name)
				continue
			}
			c := storage.ImportCommunity{Institution: inst, Town: row["town"], Name: name, Population: population}
			if row["priority_population"] != "" {
				groups, ok := readCounts(row["priority_population"])
				counts, err := priorityCounts(groups, population)
				day, derr := readDay(row["counted_on"])
				if !ok || err != nil || derr != nil {
					reject(line, "社区 %s：重点人群人口写作 名称:人数;名称:人数（人数不超过常住人口，名称为本地区的重点人群），并填写统计日期", name)
					continue
				}
				c.PriorityCounts, c.CountedOn = counts, day.Format("2006-01-02")
			}
			in.Communities = append(in.Communities, storage.ImportRow[storage.ImportCommunity]{Line: line, Row: c})
		case "doctor":
			in.Doctors = append(in.Doctors, storage.ImportRow[storage.ImportDoctor]{Line: line,
				Row: storage.ImportDoctor{Institution: inst, Name: name, Title: row["title"]}})
		case "team":
			t := storage.ImportTeam{Institution: inst, Name: name, Doctor: row["doctor"], Communities: splitList(row["communities"])}
			members, ok := readMembers(row["members"])
			if t.Doctor == "" || len(t.Communities) == 0 || !ok {
				reject(line, "团队 %s：负责医生和服务社区必填，成员写作 角色:姓名;角色:姓名", name)
				continue
			}
			if err := CheckMembers(roles, members); err != nil {
				reject(line, "团队 %s：%s", name, err)
				continue
			}
			t.Members = members
			in.Teams = append(in.Teams, storage.ImportRow[storage.ImportTeam]{Line: line, Row: t})
		default:
			reject(line, "类型“%s”须为 机构、社区、医生 或 团队", row["kind"])
		}
	}
	report, err := db.ImportOrganisation(ctx, in, dryRun || len(rejected) > 0, actor)
	if len(rejected) > 0 && err == nil {
		err = storage.ErrImportRejected
	}
	all := append(rejected, report...)
	slices.SortStableFunc(all, func(a, b storage.ImportLine) int { return a.Line - b.Line })
	return all, err
}

func validCode(code string) bool {
	if len(code) < 2 || len(code) > 32 {
		return false
	}
	for _, r := range code {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// readMembers reads "护士:韩雪;公共卫生人员:许成".
func readMembers(cell string) ([]storage.Member, bool) {
	var out []storage.Member
	for _, part := range strings.FieldsFunc(cell, func(r rune) bool { return r == ';' || r == '；' }) {
		part = strings.ReplaceAll(strings.TrimSpace(part), "：", ":")
		role, name, ok := strings.Cut(part, ":")
		if !ok || strings.TrimSpace(role) == "" || strings.TrimSpace(name) == "" {
			return nil, false
		}
		out = append(out, storage.Member{Role: strings.TrimSpace(role), Name: strings.TrimSpace(name)})
	}
	return out, true
}
