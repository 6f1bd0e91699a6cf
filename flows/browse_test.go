package flows

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
)

// engineFor runs the engine on a SQLite database seeded with a region.
func engineFor(t testing.TB, region string) *Engine {
	t.Helper()
	db := storagetest.SQLite(t)
	c, err := profile.Load(region)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveCatalog(context.Background(), c, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadDemo(context.Background(), db, region); err != nil {
		t.Fatal(err)
	}
	// The slots the demo schedules make in the days the tests talk on.
	if _, err := MaterialiseSlots(context.Background(), db, time.Date(2026, 11, 23, 0, 0, 0, 0, Shanghai)); err != nil {
		t.Fatal(err)
	}
	sealer, err := storage.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{DB: db, Sealer: sealer}
}

type line struct {
	at       time.Duration // after the conversation's start
	said     string
	contains []string
	lacks    []string
	flow     string // the conversation afterwards, "" for none
}

// play runs turns against one state and checks each reply.
func play(t *testing.T, e *Engine, turns []line) {
	t.Helper()
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var st State
	for i, tc := range turns {
		out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o", Kind: Text, Text: tc.said, At: start.Add(tc.at)})
		if err != nil {
			t.Fatalf("turn %d %q: %v", i, tc.said, err)
		}
		reply := out.Reply()
		if len(out.Replies) != 1 || len(reply) > 2048 || strings.Contains(reply, templates.ClinicPhone) {
			t.Fatalf("turn %d %q: %d replies, %d bytes; want one that fits", i, tc.said, len(out.Replies), len(reply))
		}
		for _, want := range tc.contains {
			if !strings.Contains(reply, want) {
				t.Errorf("turn %d %q: reply lacks %q:\n%s", i, tc.said, want, reply)
			}
		}
		for _, not := range tc.lacks {
			if strings.Contains(reply, not) {
				t.Errorf("turn %d %q: reply has %q:\n%s", i, tc.said, not, reply)
			}
		}
		if st.Flow != tc.flow {
			t.Errorf("turn %d %q: flow %q, want %q", i, tc.said, st.Flow, tc.flow)
		}
	}
}

func TestBrowseYaoguan(t *testing.T) {
	play(t, engineFor(t, "yaoguan"), []line{
		{said: "服务包", flow: "packages", contains: []string{
			"常州市武进区遥观镇家庭医生服务包", "【基础服务包】\n1. 基本公共卫生服务包（免费）\n2. 基本医疗服务包（个人付50元）\n3. 健康管理服务包（个人付70元）",
			"【个性化服务包】\n4. 老年人健康管理包（费用以签约机构公示为准）",
			"【增值包】\n7. 健康体检增值包（个人付50元）\n8. 糖尿病增值包（个人付360元）"}},
		{said: "3", flow: "packages", contains: []string{"3. 健康管理服务包（基础服务包）", "· 面对面随访 4次/年", "· 预约就诊 按需",
			"费用（本区参保）：基本公共卫生经费50元 + 医保基金30元，个人支付70元",
			"费用（非本区参保）：基本公共卫生经费50元，个人支付100元", "服务期：1年", "适用对象：所有签约居民"},
			lacks: []string{"以签约机构公示为准"}},
		{said: "8", flow: "packages", contains: []string{"8. 糖尿病增值包（增值包）", "适用对象：2型糖尿病患者",
			"需同时签约：基本公共卫生服务包或基本医疗服务包", "费用：个人支付360元"}},
		{said: "4", flow: "packages", contains: []string{"适用对象：65岁及以上", "费用：以签约机构公示为准"}, lacks: []string{"元"}},
		{said: "返回", flow: "packages", contains: []string{"1. 基本公共卫生服务包（免费）"}},
		{said: "9", flow: "packages", contains: []string{"请回复1到8之间的数字"}},
		{said: "看看", flow: "packages", contains: []string{"请回复1到8之间的数字"}},
		{said: "帮助", flow: "packages", contains: []string{"服务包列表"}},
		{said: "１", flow: "packages", contains: []string{"1. 基本公共卫生服务包（基础服务包）", "费用：免费"}},
		{said: "帮助", flow: "packages", contains: []string{"您正在看一个服务包的详情"}},
		{said: "取消", flow: "", contains: []string{"已退出“服务包浏览”"}},
		{said: "1", flow: "", contains: []string{"这句话我还没看懂"}},
	})
}

func TestBrowseExpiresAfterIdling(t *testing.T) {
	play(t, engineFor(t, "national"), []line{
		{said: "服务包", flow: "packages"},
		{at: 29 * time.Minute, said: "2", flow: "packages", contains: []string{"2. 老年人健康管理包"}},
		{at: 60 * time.Minute, said: "3", flow: "", contains: []string{"已经超过30分钟没有回复，已自动结束，需要的话请回复“服务包”重新开始"}, lacks: []string{"没看懂"}},
		{at: 61 * time.Minute, said: "服务包", flow: "packages", lacks: []string{"自动结束"}},
		// A one-off question is answered and the list stays open.
		{at: 62 * time.Minute, said: "我的签约", flow: "packages", contains: []string{"还没有签约家庭医生"}},
		{at: 63 * time.Minute, said: "2", flow: "packages", contains: []string{"2. 老年人健康管理包"}},
		// Another conversation replaces the list.
		{at: 64 * time.Minute, said: "签约", flow: "signing", contains: []string{"请问为谁签约"}},
	})
}

var numberedLine = regexp.MustCompile(`(?m)^(\d+)\. `)

// Every profile's list fits one reply, numbered 1..N without gaps, and
// every number opens a detail that fits too.
func TestEveryProfileBrowses(t *testing.T) {
	for _, region := range []string{"national", "linzi", "kunming", "yaoguan", "harbin", "township"} {
		t.Run(region, func(t *testing.T) {
			e := engineFor(t, region)
			var st State
			out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o", Kind: Click, Key: "服务包", At: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			list := out.Reply()
			nums := numberedLine.FindAllStringSubmatch(list, -1)
			if len(list) > 2048 || len(nums) < 4 {
				t.Fatalf("list: %d bytes, %d lines:\n%s", len(list), len(nums), list)
			}
			for i, m := range nums {
				if m[1] != strconv.Itoa(i+1) {
					t.Fatalf("list numbering breaks at %q:\n%s", m[0], list)
				}
				out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o", Kind: Text, Text: m[1], At: time.Now()})
				if err != nil {
					t.Fatal(err)
				}
				if d := out.Reply(); len(d) > 2048 || !strings.HasPrefix(d, m[1]+". ") || !strings.Contains(d, "服务内容") {
					t.Fatalf("detail %s: %d bytes:\n%s", m[1], len(d), d)
				}
			}
		})
	}
}
