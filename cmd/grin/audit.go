package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/users"
)

// auditCmd prints the audit log kept in the data directory, newest first,
// as the filters select. Reading the data directory needs no server and
// no credentials, as grin policy check: whoever can read the directory can
// read the log anyway.
func auditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs, getenv)
	actor := fs.String("actor", "", "only entries by this user (username or id)")
	kind := fs.String("actor-kind", "", "only entries by this kind of actor: user, api_key, ws_key, anonymous, handler, plugin, file, unknown")
	action := fs.String("action", "", `only this action (login, user.update, …); a trailing * matches by prefix ("plugin.*")`)
	target := fs.String("target", "", "only changes to this target (a username or user id, a plugin's id, …); a trailing * matches by prefix")
	since := fs.String("since", "", "only entries at or after this time: RFC 3339 (2026-01-31T00:00:00Z) or an age (24h, 7d)")
	until := fs.String("until", "", "only entries at or before this time: RFC 3339 or an age")
	before := fs.Int64("before", 0, "only entries older than this one (the next page's number, as printed)")
	limit := fs.Int("limit", 50, fmt.Sprintf("how many entries at most, from 1 to %d", audit.MaxLimit))
	changes := fs.Bool("changes", false, "print each entry's before and after too")
	asJSON := fs.Bool("json", false, "print one JSON entry per line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: grin audit [flags]\n\nPrints the audit log in the data directory, newest first.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("grin audit takes flags only, got %q", fs.Args())
	}
	now := time.Now()
	f := audit.Filter{Action: *action, ActorKind: audit.ActorKind(*kind), Before: *before, Limit: *limit}
	var errs []error
	if *limit < 1 || *limit > audit.MaxLimit {
		errs = append(errs, fmt.Errorf("--limit: must be from 1 to %d, got %d", audit.MaxLimit, *limit))
	}
	for _, t := range []struct {
		name, v string
		to      *time.Time
	}{{"since", *since, &f.Since}, {"until", *until, &f.Until}} {
		if t.v == "" {
			continue
		}
		v, err := timeOrAge(t.v, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", t.name, err))
		}
		*t.to = v
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*dataDir, database.FileName)); err != nil {
		return fmt.Errorf("no grin data in %s (start grin serve once, or pass --data-dir): %w", *dataDir, err)
	}
	db, err := database.Open(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	// Entries name users by id; people name them by username.
	ids := map[string]string{}
	if err := users.NewDirectory(db).EachUser(ctx, func(id, username string) bool {
		ids[username] = id
		return true
	}); err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	alsoID := func(v string) []string {
		if v == "" {
			return nil
		}
		if id, ok := ids[users.NormalizeUsername(v)]; ok {
			return []string{v, id}
		}
		return []string{v}
	}
	f.Actor, f.Target = alsoID(*actor), alsoID(*target)
	entries, next, err := audit.New(db).List(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
	} else {
		printAudit(stdout, entries, *changes)
	}
	if next != 0 {
		fmt.Fprintf(stderr, "more entries: grin audit --before %d (with the same filters)\n", next)
	}
	return nil
}

// printAudit prints entries as a table, one line each.
func printAudit(w io.Writer, entries []audit.Entry, changes bool) {
	if len(entries) == 0 {
		fmt.Fprintln(w, "no entries")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tACTOR\tADDRESS\tACTION\tTARGET\tOUTCOME\tDETAIL")
	for _, e := range entries {
		who := e.Actor.Name
		if who == "" {
			who = e.Actor.ID
		}
		if e.Actor.Kind != audit.ActorUser {
			who = strings.TrimSpace(string(e.Actor.Kind) + " " + who)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Local().Format(time.DateTime), who,
			orDash(e.Address), e.Action, orDash(e.Target), e.Outcome, e.Detail)
		if changes {
			if e.Before != nil {
				fmt.Fprintf(tw, "\t\tbefore: %s\n", e.Before)
			}
			if e.After != nil {
				fmt.Fprintf(tw, "\t\tafter:  %s\n", e.After)
			}
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timeOrAge reads an RFC 3339 time, or an age before now: a duration
// (36h) or whole days (7d).
func timeOrAge(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	var age time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		if _, err = fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 {
			age = time.Duration(n) * 24 * time.Hour
		}
	} else {
		age, err = time.ParseDuration(v)
	}
	if err != nil || age < 0 {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-31T00:00:00Z) nor an age (24h, 7d)", v)
	}
	return now.Add(-age), nil
}
