package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// profileLoad replaces the database's catalog with the JIAYI_REGION profile
// file, after showing what would change and asking. Signed contracts keep
// the prices they froze at signing.
func profileLoad(ctx context.Context, args []string, cfg config.Config, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("profile load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	yes := fs.Bool("yes", false, "replace without asking")
	if len(args) == 0 || args[0] != "load" || fs.Parse(args[1:]) != nil {
		fmt.Fprintln(stderr, "usage: jiayi profile load [-yes]   (the profile named by JIAYI_REGION)")
		return 2
	}
	next, err := profile.Load(cfg.Region)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi profile load:", err)
		return 1
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi profile load:", err)
		return 1
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		fmt.Fprintln(stderr, "jiayi profile load:", err)
		return 1
	}
	current, err := db.Catalog(ctx)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		fmt.Fprintln(stderr, "jiayi profile load:", err)
		return 1
	}
	changes := profile.Diff(current, next)
	if len(changes) == 0 {
		fmt.Fprintf(stdout, "The database already holds %s as written.\n", templates.ProfilePath(cfg.Region))
		return 0
	}
	fmt.Fprintf(stdout, "Loading %s would change:\n", templates.ProfilePath(cfg.Region))
	for _, c := range changes {
		fmt.Fprintln(stdout, "  "+c)
	}
	fmt.Fprintln(stdout, "Prices set or confirmed through the admin API are replaced by the file's. "+
		"Signed contracts keep the prices they froze at signing.")
	if !*yes {
		fmt.Fprint(stdout, "Replace the catalog? Type yes to go on: ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			fmt.Fprintln(stdout, "Nothing changed.")
			return 1
		}
	}
	if err := db.SaveCatalog(ctx, next, "jiayi profile load"); err != nil {
		fmt.Fprintln(stderr, "jiayi profile load:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Loaded %s: %d packages.\n", cfg.Region, len(next.Packages))
	return 0
}
