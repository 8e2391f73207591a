package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// policyCheck prints the decision for SUBJECT OBJECT ACTION against the
// policy in the data directory. SUBJECT may be a username, a user id,
// user:<username>, a role, a plugin or a credential subject. Rules that
// name subjects matching nothing are warned about on stderr.
func policyCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (bool, error) {
	fs := flag.NewFlagSet("grin policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs, getenv)
	self := fs.String("self", "", `the id "{self}" stands for (default: the subject's user id)`)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: grin policy check [flags] SUBJECT OBJECT ACTION\n\nExit status: 0 allowed, 1 denied, 2 error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if fs.NArg() != 3 {
		fs.Usage()
		return false, errors.New("policy check takes SUBJECT OBJECT ACTION")
	}
	subject, object, action := fs.Arg(0), fs.Arg(1), strings.ToLower(fs.Arg(2))
	policy, done, err := openPolicy(ctx, *dataDir, stderr)
	if err != nil {
		return false, err
	}
	defer done()
	subject, label, err := policy.ResolveSubject(ctx, subject)
	if err != nil {
		return false, err
	}
	if *self == "" {
		*self = subject
	}
	d, err := policy.Explain(policies.Request{Subjects: []string{subject}, Self: *self, Object: object, Action: action})
	if err != nil {
		return false, err
	}
	switch {
	case d.Denied:
		fmt.Fprintf(stdout, "denied: %s may not %s %s\n", label, action, object)
	case !d.Allowed:
		fmt.Fprintf(stdout, "denied: no rule allows %s to %s %s\n", label, action, object)
		return false, nil
	default:
		fmt.Fprintf(stdout, "allowed: %s may %s %s\n", label, action, object)
	}
	rule := d.Text
	if rule == "" {
		rule = strings.Join(d.Rule, ", ")
	}
	if d.Line > 0 {
		rule += fmt.Sprintf("   (policy.csv line %d)", d.Line)
	}
	fmt.Fprintf(stdout, "  rule: %s\n", rule)
	if len(d.Via) > 0 {
		fmt.Fprintf(stdout, "  via:  %s -> %s\n", subject, strings.Join(d.Via, " -> "))
	}
	return d.Allowed, nil
}

// openPolicy opens the policy of a data directory as the server would:
// files the server would refuse are refused here too, and reported, and
// the answers are then the last good policy's. Rules naming subjects that
// match nothing are warned about on stderr.
func openPolicy(ctx context.Context, dataDir string, stderr io.Writer) (*policies.Enforcer, func(), error) {
	if _, err := os.Stat(filepath.Join(dataDir, database.FileName)); err != nil {
		return nil, nil, fmt.Errorf("no grin data in %s (start grin serve once, or pass --data-dir): %w", dataDir, err)
	}
	db, err := database.Open(ctx, dataDir)
	if err != nil {
		return nil, nil, err
	}
	policy, err := policies.Open(ctx, dataDir, db, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		policies.WithUsers(users.NewDirectory(db)))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	for _, w := range policy.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return policy, func() { db.Close() }, nil
}

// policyExplain prints what SUBJECT may do under the policy in the data
// directory: its roles, every object and action a rule allows it or a deny
// rule refuses it, with the rule, and the rules that name it.
func policyExplain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs, getenv)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: grin policy explain [flags] SUBJECT\n\nSUBJECT: a username, a user id, user:<username>, role:…, plugin:<id> or credential:….")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("policy explain takes SUBJECT")
	}
	policy, done, err := openPolicy(ctx, *dataDir, stderr)
	if err != nil {
		return err
	}
	defer done()
	subject, label, err := policy.ResolveSubject(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	self := subject
	for _, p := range []string{policies.RolePrefix, "perm:", policies.PluginPrefix, policies.CredentialPrefix} {
		if strings.HasPrefix(subject, p) {
			self = ""
		}
	}
	// Spaces are known to the memory store, which may be elsewhere: the
	// shared space and the spaces rules name are explored.
	p, err := policy.Explore(ctx, subject, self, []string{"shared"})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", label)
	if len(p.Roles) > 0 {
		fmt.Fprintf(stdout, "  roles: %s\n", strings.Join(p.Roles, ", "))
	}
	fmt.Fprintln(stdout, "may:")
	for _, d := range p.Decisions {
		if d.Decision.Allowed {
			fmt.Fprintf(stdout, "  %-6s %-32s %s\n", d.Action, d.Object, d.Decision.Reason())
		}
	}
	var denied bool
	for _, d := range p.Decisions {
		if d.Decision.Denied {
			if !denied {
				fmt.Fprintln(stdout, "may not (deny rules):")
				denied = true
			}
			fmt.Fprintf(stdout, "  %-6s %-32s %s\n", d.Action, d.Object, d.Decision.Reason())
		}
	}
	if len(p.Rules) > 0 {
		fmt.Fprintln(stdout, "rules naming it:")
		for _, r := range p.Rules {
			fmt.Fprintf(stdout, "  policy.csv line %d: %s\n", r.Line, r.Text)
		}
	}
	return nil
}

// dataDirFlag defines -data-dir on fs, defaulting to GRIN_DATA_DIR or
// ./grin-data as grin serve does, for the commands that read the data
// directory without a server.
func dataDirFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("data-dir", envOr(getenv, "GRIN_DATA_DIR", "./grin-data"), "grin's data directory (GRIN_DATA_DIR)")
}
