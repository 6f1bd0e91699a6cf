// Command jiayi runs the family-doctor Official Account backend.
//
//	jiayi serve     answer WeChat, serve health, readiness and metrics
//	jiayi migrate   apply database migrations and exit
//	jiayi profile load   replace the catalog with the JIAYI_REGION profile
//	jiayi admin     make console accounts, reset a password
//	jiayi org import     import the organisation from CSV
//	jiayi demo seed fill a database with made-up residents for benchmarks
//	jiayi demo remove    delete the sandbox's demo data before going live
//	jiayi sim       chat with a running jiayi as a resident would
//	jiayi load      drive made-up residents against running instances and measure
//	jiayi version   print the version
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jiayi-health/jiayi/bot"
	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/storage"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: jiayi <command>

commands:
  serve     answer WeChat on JIAYI_ADDR (default :8080)
  migrate   apply database migrations to JIAYI_DATABASE_URL and exit
  profile load [-yes]
            replace the database's package catalog with the JIAYI_REGION
            profile file, after showing what changes and asking
  admin create-user NAME --role ROLE [--institution CODE] [--doctor ID]
            make a console account (the password is asked for, never an argument)
  admin reset-password NAME
            set a new password for a console account
  org import [-apply] FILE.csv
            import institutions, communities, doctors and teams (a dry run without -apply)
  demo seed --residents N [--region R] [--now RFC3339]
            fill the database with N made-up residents, for demonstrations and benchmarks
  demo remove
            delete the demo organisation sandbox mode loaded, and what was made
            with it, before going live
  jobs run --once [--now RFC3339]
            run every background job once and print what each did as JSON
  menu show | push
            print the custom menu of templates/menu.yaml, or send it to WeChat
  sim       chat with a running jiayi as a resident would (sim -h for options)
  load      drive made-up residents against running instances and print the
            throughput and latency as JSON (load -h for options)
  version   print the version

Configuration is read from JIAYI_* environment variables; see README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	slog.SetDefault(log)
	if len(args) > 0 && args[0] == "sim" {
		return sim(args[1:], getenv, stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "load" {
		return loadCommand(args[1:], getenv, stdout, stderr)
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "jiayi", version)
		return 0
	case "serve", "migrate":
		if len(args) != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "profile", "admin", "org", "demo", "menu", "jobs":
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		log.Error("configuration refused; fix these and start again", "problems", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch args[0] {
	case "migrate":
		return migrate(ctx, cfg, log)
	case "profile":
		return profileLoad(ctx, args[1:], cfg, stdin, stdout, stderr)
	case "admin":
		return adminCommand(ctx, args[1:], cfg, stdin, stdout, stderr)
	case "org":
		return orgCommand(ctx, args[1:], cfg, stdout, stderr)
	case "demo":
		return demoCommand(ctx, args[1:], cfg, stdout, stderr)
	case "menu":
		return menuCommand(ctx, args[1:], cfg, stdout, stderr)
	case "jobs":
		return jobsCommand(ctx, args[1:], cfg, stdout, stderr)
	}
	return serve(ctx, cfg, log)
}

func migrate(ctx context.Context, cfg config.Config, log *slog.Logger) int {
	db, err := storage.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		log.Error("migrate failed", "err", err)
		return 1
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil {
		log.Error("migrate failed", "err", err)
		return 1
	}
	log.Info("migrations up to date", "applied", applied)
	return 0
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) int {
	log.Info("starting jiayi", "version", version, "config", cfg)
	srv, err := bot.New(ctx, cfg, log, bot.Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if cfg.PprofAddr != "" {
		addr, stop, err := serveProfiler(cfg.PprofAddr)
		if err != nil {
			ln.Close()
			log.Error("start failed", "err", err)
			return 1
		}
		defer stop()
		log.Info("profiler listening", "addr", addr)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// serveProfiler serves Go's profiler (net/http/pprof) on addr, a loopback
// address, until stop is called; it returns the address it listens on.
func serveProfiler(addr string) (listening string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("profiler: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}
