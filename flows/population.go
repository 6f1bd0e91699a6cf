package flows

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// A community's population and how many of its residents are in each of
// the programme's priority groups are the denominators of the signing
// rates; each count carries the day it was made.

// PriorityGroups lists the programme's priority groups, code and name.
func PriorityGroups(ctx context.Context, db *storage.DB) ([]profile.Term, error) {
	s, err := Settings(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []profile.Term
	for _, g := range s.PriorityGroups {
		term, _ := findTerm(g)
		out = append(out, term)
	}
	return out, nil
}

// SetPopulation checks and records a community's counts: groups by code or
// name, none above the population, counted on a day not after today. It
// returns a *Refusal saying what to correct.
func SetPopulation(ctx context.Context, db *storage.DB, scope storage.Scope, community int64, population int,
	groups map[string]int, countedOn string, now time.Time, actor string) error {
	counts, err := priorityCounts(groups, population)
	if err != nil {
		return err
	}
	day, err := readDay(countedOn)
	if err != nil || day.After(now) {
		return &Refusal{Reason: "统计日期须为今天或以前的日期"}
	}
	return db.SetPopulation(ctx, scope, community, population, counts, day.Format("2006-01-02"), actor)
}

func priorityCounts(groups map[string]int, population int) (storage.PriorityCounts, error) {
	if population < 0 {
		return nil, &Refusal{Reason: "常住人口须为整数"}
	}
	counts := storage.PriorityCounts{}
	for g, n := range groups {
		code, problem := readGroups(g)
		if problem != "" || len(code) != 1 {
			return nil, &Refusal{Reason: fmt.Sprintf("“%s”不是重点人群", g)}
		}
		if n < 0 || n > population {
			return nil, &Refusal{Reason: fmt.Sprintf("%s人数须在0到常住人口之间", profile.Name(profile.Words().PriorityGroups, code[0]))}
		}
		counts[code[0]] = n
	}
	return counts, nil
}

// readCounts reads "65岁以上老年人:420;高血压患者:310".
func readCounts(cell string) (map[string]int, bool) {
	out := map[string]int{}
	for _, part := range strings.FieldsFunc(cell, func(r rune) bool { return r == ';' || r == '；' }) {
		name, n, ok := strings.Cut(strings.ReplaceAll(strings.TrimSpace(part), "：", ":"), ":")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || err != nil {
			return nil, false
		}
		out[strings.TrimSpace(name)] = count
	}
	return out, true
}
