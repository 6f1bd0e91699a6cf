package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jiayi-health/jiayi/bot/admin"
	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/storage"
	"golang.org/x/term"
)

const adminUsage = `usage:
  jiayi admin create-user NAME --role admin|doctor|viewer|city [--institution CODE] [--doctor ID]
  jiayi admin reset-password NAME

The password is read from the terminal (asked twice, not shown) or, when
stdin is not a terminal, from its first line; never from an argument.
`

// adminCommand manages console accounts from the command line: the first
// account of a deployment, and a way back in when every admin forgot.
func adminCommand(ctx context.Context, args []string, cfg config.Config, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	verb, name := args[0], args[1]
	fs := flag.NewFlagSet("admin "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	role := fs.String("role", "", "admin, doctor, viewer or city")
	institution := fs.String("institution", "", "the institution's code (not for city)")
	doctor := fs.Int64("doctor", 0, "the doctor record of a doctor account")
	if fs.Parse(args[2:]) != nil || fs.NArg() != 0 || (verb != "create-user" && verb != "reset-password") ||
		(verb == "create-user" && *role == "") {
		fmt.Fprint(stderr, adminUsage)
		return 2
	}
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	password, err := readPassword(stdin, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	if verb == "reset-password" {
		return resetPassword(ctx, db, name, password, stdout, stderr)
	}
	s := admin.NewStaff{Username: name, Role: storage.Role(*role), Doctor: *doctor, Password: password}
	if s.Role != storage.RoleCity {
		in, err := db.InstitutionByCode(ctx, *institution)
		if errors.Is(err, storage.ErrNotFound) {
			fmt.Fprintf(stderr, "jiayi admin: no institution with code %q; import the organisation first (jiayi org import FILE.csv)\n", *institution)
			return 1
		}
		if err != nil {
			fmt.Fprintln(stderr, "jiayi admin:", err)
			return 1
		}
		s.Institution = in.ID
	}
	if _, err := admin.CreateStaff(ctx, db, storage.Scope{}, s, "jiayi admin create-user"); err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Created %s (%s). Sign in at /admin/.\n", admin.NormaliseUsername(name), *role)
	return 0
}

func resetPassword(ctx context.Context, db *storage.DB, name, password string, stdout, stderr io.Writer) int {
	if err := admin.CheckPassword(password); err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	s, err := db.StaffByUsername(ctx, admin.NormaliseUsername(name))
	if errors.Is(err, storage.ErrNotFound) {
		fmt.Fprintf(stderr, "jiayi admin: no account %q\n", name)
		return 1
	}
	if err == nil {
		err = db.SetStaffPassword(ctx, storage.Scope{}, s.ID, admin.HashPassword(password), "jiayi admin reset-password")
	}
	if err != nil {
		fmt.Fprintln(stderr, "jiayi admin:", err)
		return 1
	}
	fmt.Fprintf(stdout, "New password set for %s; its sessions have ended.\n", s.Username)
	return 0
}

// readPassword asks twice without echo on a terminal, or reads one line.
func readPassword(stdin io.Reader, stdout io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stdout, "Password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stdout, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on stdin")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
