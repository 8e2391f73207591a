// Command grin is the grin server and its administration commands.
//
//	grin serve                         start the server (configured by GRIN_* variables or flags)
//	grin policy check SUBJECT OBJECT ACTION
//	grin policy explain SUBJECT
//	grin audit [--actor U] [--action A] [--target T] [--since T] [--until T]
//	grin memory migrate --from embedded --to weaviate
//	grin db migrate --from sqlite --to postgres
//	grin version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `grin: a multi-user conversational memory server (Cheshire Cat compatible)

Usage:
  grin serve [flags]                          start the server; grin serve -h lists the settings
  grin policy check [flags] SUBJECT OBJECT ACTION
                                              say whether the policy allows it, and which rule decided
  grin policy explain [flags] SUBJECT         what SUBJECT may do, rule by rule, its roles and the rules naming it
  grin audit [flags]                          print the audit log: who changed what, when, from where; grin audit -h lists the filters
  grin plugin new|build|pack|run|test|dev    write, build, run, test and upload hook plugins; grin plugin help says how
  grin ingest [flags] FILE...                 read files into declarative memory through a running grin
  grin memory migrate [--from embedded] [--to weaviate] [flags]
                                              copy every memory from the data directory into Weaviate, resumably
  grin db migrate [--from sqlite] [--to postgres] [flags]
                                              copy everything but memories from the data directory into PostgreSQL, resumably
  grin bench chat [flags]                     load test: N users over WebSocket, M messages each
  grin bench start [flags]                    time from process start to first answer, beside a bare Go server
  grin openapi [-3.0] [-json]                 print the OpenAPI document the server serves
  grin version                                print the version
`

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful shutdown; a second one ends the
	// process at once, as without grin's handling.
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// defaultGCPercent is the collector's target unless GOGC says otherwise:
// the heap may grow to three times what is live between collections, not
// twice. A chat turn allocates some 45 KB that is garbage once its frame
// is written, and at 100 users the collector was an eighth of the CPU: at
// 200, replies/s rose 6 % (100 × 40, six pairs of six) for a fifth more
// resident memory (1,000 × 20: 582 MB against 480 MB). GOMEMLIMIT caps
// it where memory is tight.
const defaultGCPercent = 200

// run is main without the process: testable, and the only place that
// turns errors into exit codes.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stdout, stderr)
	case "plugin":
		var code int
		code, err = plugin(ctx, args[1:], getenv, stdout, stderr)
		if err == nil && code != 0 {
			return code
		}
	case "policy":
		if len(args) >= 2 && args[1] == "explain" {
			err = policyExplain(ctx, args[2:], getenv, stdout, stderr)
			break
		}
		if len(args) < 2 || args[1] != "check" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		var allowed bool
		allowed, err = policyCheck(ctx, args[2:], getenv, stdout, stderr)
		if err == nil && !allowed {
			return 1
		}
	case "audit":
		err = auditCmd(ctx, args[1:], getenv, stdout, stderr)
	case "memory":
		if len(args) < 2 || args[1] != "migrate" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		err = memoryMigrate(ctx, args[2:], getenv, stdout, stderr)
	case "db":
		if len(args) < 2 || args[1] != "migrate" {
			fmt.Fprint(stderr, usage)
			return 2
		}
		err = dbMigrate(ctx, args[2:], getenv, stdout, stderr)
	case "ingest":
		err = ingest(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		switch {
		case len(args) >= 2 && args[1] == "chat":
			err = benchChat(ctx, args[2:], getenv, stdout, stderr)
		case len(args) >= 2 && args[1] == "start":
			err = benchStart(ctx, args[2:], stdout, stderr)
		case len(args) >= 2 && args[1] == "bare-server": // grin bench start's anchor
			err = bareServer(ctx, getenv)
		default:
			fmt.Fprint(stderr, usage)
			return 2
		}
	case "openapi":
		err = openapiCmd(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "grin", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "grin: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "grin: %v\n", err)
		return 2
	}
	return 0
}
