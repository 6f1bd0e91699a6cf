package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

const orgUsage = `usage: jiayi org import [-apply] FILE.csv

Reads institutions, communities, doctors and teams from a CSV file (UTF-8 or
GB18030, as Excel saves it) whose header row is
  ` + flows.OrgHeader + `
and prints what importing it would do, row by row. With -apply it imports,
in one transaction; a file with any rejected row writes nothing.
`

// orgCommand imports the organisation, so an operator can go live before
// anyone opens a browser.
func orgCommand(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("org import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apply := fs.Bool("apply", false, "import (without it, only show what would change)")
	if len(args) == 0 || args[0] != "import" || fs.Parse(args[1:]) != nil || fs.NArg() != 1 {
		fmt.Fprint(stderr, orgUsage)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "jiayi org import:", err)
		return 1
	}
	defer f.Close()
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi org import:", err)
		return 1
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		fmt.Fprintln(stderr, "jiayi org import:", err)
		return 1
	}
	report, err := flows.ImportOrganisation(ctx, db, f, !*apply, "jiayi org import", "")
	for _, l := range report {
		fmt.Fprintf(stdout, "line %d: %s: %s\n", l.Line, l.Action, l.What)
	}
	switch {
	case errors.Is(err, storage.ErrImportRejected):
		fmt.Fprintln(stdout, "Some rows were rejected (above); nothing was written. Fix them and run again.")
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "jiayi org import:", err)
		return 1
	case !*apply:
		fmt.Fprintln(stdout, "Dry run: nothing was written. Run again with -apply to import.")
	default:
		fmt.Fprintln(stdout, "Imported.")
	}
	return 0
}
