package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestImportAndExportResidents(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := profile.Ensure(ctx, db, "national"); err != nil {
			t.Fatal(err)
		}
		if _, err := profile.LoadDemo(ctx, db, "national"); err != nil {
			t.Fatal(err)
		}
		inst, _ := db.InstitutionByCode(ctx, "demo")
		sealer, _ := storage.NewSealer(bytes.Repeat([]byte{1}, 32))
		now := time.Date(2026, 12, 1, 10, 0, 0, 0, Shanghai)
		in := ResidentImport{Institution: inst.ID, Actor: "wang", Now: now}
		good, other := synthID("110105", "19480512", "031"), synthID("110105", "19600101", "042")
		badCheck := good[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", good[17])+1)%11])
		file := "姓名,身份证号,手机号,社区,团队,服务包,重点人群,签约日期,到期日期\n" +
			"赵桂兰," + good + ",13800001111,幸福社区,林静家庭医生团队,,,2026-03-01,\n" +
			"钱大伟," + badCheck + ",13800002222,幸福社区,林静家庭医生团队,,,2026/3/1,\n" +
			"孙小梅," + other + ",13800003333,光明社区,林静家庭医生团队,,,2026-03-01,\n" +
			"李建," + other + ",13800003333,幸福社区,林静家庭医生团队,不存在的服务包,,2026-03-01,\n" +
			"周玉芬," + other + ",13800003333,幸福社区,林静家庭医生团队,,,2026-03-01,2031-02-28\n"

		lines, err := ImportResidents(ctx, db, sealer, strings.NewReader(file), in)
		got := report(lines)
		if !errors.Is(err, storage.ErrImportRejected) || !strings.Contains(got, "3 rejected 身份证号不是有效") ||
			!strings.Contains(got, "4 rejected 本机构没有社区“光明社区”，或团队“林静家庭医生团队”不服务该社区") ||
			!strings.Contains(got, "5 rejected 服务包“不存在的服务包”不在服务包目录中") ||
			!strings.Contains(got, "6 rejected 签约期为一年：到期日期不能晚于 2027-03-01") || !strings.Contains(got, "2 create 赵桂兰 1101**********") {
			t.Fatalf("a file with bad rows: %v\n%s", err, got)
		}
		if strings.Contains(got, good) || strings.Contains(got, other) {
			t.Fatalf("the report shows an ID number in clear:\n%s", got)
		}
		if _, total, _ := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{}, storage.Page{}); total != 0 {
			t.Fatalf("a rejected file wrote %d residents", total)
		}

		ok := "姓名,身份证号,手机号,社区,团队,服务包,重点人群,签约日期,到期日期\n赵桂兰," + good + ",13800001111,幸福社区,林静家庭医生团队,,,2026-03-01,\n"
		if _, err := ImportResidents(ctx, db, sealer, strings.NewReader(ok), ResidentImport{Institution: inst.ID, Actor: "wang", Now: now, DryRun: true}); err != nil {
			t.Fatal(err)
		}
		if _, total, _ := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{}, storage.Page{}); total != 0 {
			t.Fatal("a dry run wrote residents")
		}
		if _, err := ImportResidents(ctx, db, sealer, strings.NewReader(ok), in); err != nil {
			t.Fatal(err)
		}
		rows, _, _ := db.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{Query: good[14:]}, storage.Page{})
		if len(rows) != 1 || rows[0].ContractStatus.String != "active" || rows[0].IDMasked != MaskID(good) {
			t.Fatalf("the imported resident: %+v", rows)
		}
		contract, _ := db.ContractByNumber(ctx, rows[0].ContractNumber.String)
		if contract.TermEnd.String != "2027-02-28" || len(contract.Packages) != 1 {
			t.Fatalf("the imported contract: %+v", contract)
		}
		// The same file again changes nothing; the same person signed on
		// another day is refused: one live contract each.
		lines, err = ImportResidents(ctx, db, sealer, strings.NewReader(ok), in)
		if err != nil || !strings.Contains(report(lines), "2 unchanged 赵桂兰") {
			t.Fatalf("importing twice: %v %s", err, report(lines))
		}
		lines, err = ImportResidents(ctx, db, sealer, strings.NewReader(strings.Replace(ok, "2026-03-01", "2026-04-01", 1)), in)
		if !errors.Is(err, storage.ErrImportRejected) || !strings.Contains(report(lines), "该身份证号已有生效中或待确认的签约") {
			t.Fatalf("the same person signed on another day: %v %s", err, report(lines))
		}
		// The imported contract blocks signing online.
		if has, _ := db.HasLiveContract(ctx, sealer.Hash("id_number", good)); !has {
			t.Fatal("an imported contract does not count as live")
		}

		var out bytes.Buffer
		if err := ExportResidents(ctx, db, storage.Scope{Institution: inst.ID}, &out); err != nil {
			t.Fatal(err)
		}
		csv := out.String()
		if !strings.HasPrefix(csv, "\xef\xbb\xbf姓名,身份证号,手机号,社区,团队,服务包,重点人群,签约日期,到期日期,协议号,状态\n") ||
			!strings.Contains(csv, "赵桂兰,"+MaskID(good)+",138****1111,幸福社区,林静家庭医生团队,") || strings.Contains(csv, good) {
			t.Fatalf("export:\n%s", csv)
		}
		// A cell that a spreadsheet would run as a formula is written as text.
		storagetest.SQL(t, db).MustExec(`UPDATE communities SET name = '=HYPERLINK("http://x")' WHERE name = '幸福社区'`)
		out.Reset()
		if err := ExportResidents(ctx, db, storage.Scope{Institution: inst.ID}, &out); err != nil ||
			!strings.Contains(out.String(), `,"'=HYPERLINK(""http://x"")",`) {
			t.Fatalf("a formula in the export: %v\n%s", err, out.String())
		}
		var none bytes.Buffer
		ExportResidents(ctx, db, storage.Scope{Institution: inst.ID + 99}, &none)
		if strings.Count(none.String(), "\n") != 1 {
			t.Fatalf("another institution's export holds rows:\n%s", none.String())
		}
	})
}

// At the desk a resident may have only a landline, or no phone at all.
func TestSignAtTheDeskWithoutAMobile(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	docs, _ := e.DB.Doctors(ctx)
	in := ResidentImport{Institution: docs[0].InstitutionID, Actor: "wang", Now: time.Now()}
	place, _ := e.DB.FindCommunityTeam(ctx, in.Institution, "幸福社区", "林静家庭医生团队")
	for i, phone := range []string{"0531-88886666", ""} {
		id := synthID("110105", "19480512", fmt.Sprintf("03%d", i))
		if _, err := SignAtDesk(ctx, e.DB, e.Sealer, DeskSigning{Name: "赵桂兰", IDNumber: id, Phone: phone, CommunityID: place.CommunityID,
			TeamID: place.TeamID, Request: strings.Repeat(fmt.Sprint(i), 20)}, in); err != nil {
			t.Fatalf("phone %q: %v", phone, err)
		}
		rows, _, _ := e.DB.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{Query: id[14:]}, storage.Page{})
		if want := map[string]string{"0531-88886666": "053*****6666", "": ""}[phone]; len(rows) != 1 || rows[0].PhoneMasked != want {
			t.Fatalf("phone %q shown as %+v", phone, rows)
		}
	}
	// Staff find a resident by a landline's last four, as by a mobile's.
	if rows, _, _ := e.DB.ListResidents(ctx, storage.Scope{}, storage.ResidentFilter{Query: "6666"}, storage.Page{}); len(rows) != 1 {
		t.Fatalf("by a landline's last four: %+v", rows)
	}
	_, err := SignAtDesk(ctx, e.DB, e.Sealer, DeskSigning{Name: "赵桂兰", IDNumber: synthID("110105", "19480512", "052"), Phone: "12345",
		CommunityID: place.CommunityID, TeamID: place.TeamID, Request: strings.Repeat("x", 20)}, in)
	var refusal *Refusal
	if !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "固定电话须带区号") {
		t.Fatalf("a bad number: %v", err)
	}
}
