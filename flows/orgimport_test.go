package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"golang.org/x/text/encoding/simplifiedchinese"
)

const orgFile = "\xef\xbb\xbf" + OrgHeader + `
机构,fenghuang,凤凰镇卫生院,乡镇卫生院,0533-7123456,,,,,,,,
社区,fenghuang,东召口村,,,凤凰镇,"3,200",65岁以上老年人:410;hypertension:260,2026-10-31,,,,
社区,fenghuang,西召口村,,,凤凰镇,2100,,,,,,
医生,fenghuang,刘志刚,,,,,,,全科主治医师,,,
团队,fenghuang,刘志刚家庭医生团队,,,,,,,,刘志刚,东召口村；西召口村,乡村医生：孙海;专科医生:赵丽
`

func report(lines []storage.ImportLine) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%d %s %s\n", l.Line, l.Action, l.What)
	}
	return b.String()
}

func TestImportOrganisation(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		bad := orgFile + "团队,fenghuang,孙医生团队,,,,,,,,孙医生,东召口村,\n社区,fenghuang,南村,,,凤凰镇,很多,,,,,,\n社区,fenghuang,北村,,,凤凰镇,10,高血压:20,2026-10-31,,,,\n"
		lines, err := ImportOrganisation(ctx, db, strings.NewReader(bad), false, "test", "")
		got := report(lines)
		if !errors.Is(err, storage.ErrImportRejected) || !strings.Contains(got, "7 rejected 团队 孙医生团队：负责医生“孙医生”") ||
			!strings.Contains(got, "8 rejected 社区 南村") || !strings.Contains(got, "9 rejected 社区 北村：重点人群人口") {
			t.Fatalf("a file with bad rows: %v\n%s", err, got)
		}
		if opening, _ := db.SigningOpening(ctx); opening.Open() {
			t.Fatal("a rejected file wrote rows")
		}
		if n, _ := db.InstitutionCount(ctx); n != 0 {
			t.Fatalf("a rejected file wrote %d institutions", n)
		}

		lines, err = ImportOrganisation(ctx, db, strings.NewReader(orgFile), true, "test", "")
		if err != nil || !strings.Contains(report(lines), "6 create 团队 刘志刚家庭医生团队，负责医生 刘志刚") {
			t.Fatalf("dry run: %v\n%s", err, report(lines))
		}
		if n, _ := db.InstitutionCount(ctx); n != 0 {
			t.Fatal("a dry run wrote rows")
		}
		if _, err := ImportOrganisation(ctx, db, strings.NewReader(orgFile), false, "test", ""); err != nil {
			t.Fatal(err)
		}
		opening, _ := db.SigningOpening(ctx)
		if !opening.Open() || opening.ServedCommunities != 2 || opening.Phones[0] != "0533-7123456" {
			t.Fatalf("after import: %+v", opening)
		}
		communities, _, _ := db.ListCommunities(ctx, storage.Scope{}, storage.Page{})
		if len(communities) != 2 || communities[0].Residents != 3200 || communities[0].PriorityCounts["hypertension"] != 260 ||
			communities[0].PriorityCounts["elderly"] != 410 || communities[0].CountedOn != "2026-10-31" {
			t.Fatalf("communities: %+v", communities)
		}
		teams, _ := db.TeamsServing(ctx, communities[0].ID)
		if len(teams) != 1 || len(teams[0].Members) != 2 || teams[0].Members[0] != (storage.Member{Role: "乡村医生", Name: "孙海"}) {
			t.Fatalf("teams: %+v", teams)
		}

		// Importing again changes what changed and doubles nothing; the
		// file may come as GB18030, as Excel on Chinese Windows saves it.
		again := strings.Replace(strings.TrimPrefix(orgFile, "\xef\xbb\xbf"), "2100", "2300", 1)
		gb, err := simplifiedchinese.GB18030.NewEncoder().String(again)
		if err != nil {
			t.Fatal(err)
		}
		lines, err = ImportOrganisation(ctx, db, strings.NewReader(gb), false, "test", "")
		if got := report(lines); err != nil || !strings.Contains(got, "4 update 社区 西召口村（凤凰镇），常住人口 2300") ||
			!strings.Contains(got, "6 unchanged 团队 刘志刚家庭医生团队") {
			t.Fatalf("second import: %v\n%s", err, got)
		}
		if n, _ := db.InstitutionCount(ctx); n != 1 {
			t.Fatalf("institutions after a second import: %d", n)
		}
		if _, total, _ := db.ListDoctors(ctx, storage.Scope{}, storage.Page{}); total != 1 {
			t.Fatalf("doctors after a second import: %d", total)
		}
		// An institution's own staff touch only their institution.
		lines, err = ImportOrganisation(ctx, db, strings.NewReader(orgFile), false, "test", "hedong")
		if !errors.Is(err, storage.ErrImportRejected) || !strings.Contains(report(lines), "2 rejected 机构代码 fenghuang 不是您所在的机构") {
			t.Fatalf("another institution's rows: %v\n%s", err, report(lines))
		}
	})
}

func TestImportOrganisationRefusesAFileItCannotRead(t *testing.T) {
	db := storagetest.SQLite(t)
	for file, want := range map[string]string{
		"":                 "文件是空的",
		"类型,机构代码,名称,颜色\n":  "不认识的列“颜色”",
		"类型,名称\n机构,某卫生院\n": "缺少“机构代码”列",
		"类型,机构代码,名称\n机构,x1,某\n机构,x2,某\"卫生院\n":          "第 3 行格子中间有英文双引号",
		"类型,机构代码,名称\n机构,x1,\"某卫生院\n":                   "第 2 行引号没有配对",
		OrgHeader + "\n机构,Bad Code,某,乡镇卫生院,,,,,,,,,\n": "机构代码为2到32位",
		OrgHeader + "\n诊所,x1,某,,,,,,,,,,\n":            "类型“诊所”",
	} {
		lines, err := ImportOrganisation(context.Background(), db, strings.NewReader(file), true, "test", "")
		if err == nil || !strings.Contains(err.Error()+report(lines), want) {
			t.Errorf("%q: %v %s, want %q", file, err, report(lines), want)
		}
	}
}
