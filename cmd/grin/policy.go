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
	dataDir := getenv("GRIN_DATA_DIR")
	if dataDir == "" {
		dataDir = "./grin-data"
	}
	fs.StringVar(&dataDir, "data-dir", dataDir, "grin's data directory (GRIN_DATA_DIR)")
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
	if _, err := os.Stat(filepath.Join(dataDir, database.FileName)); err != nil {
		return false, fmt.Errorf("no grin data in %s (start grin serve once, or pass --data-dir): %w", dataDir, err)
	}
	db, err := database.Open(ctx, dataDir)
	if err != nil {
		return false, err
	}
	defer db.Close()
	// Files the server would refuse are refused here too, and reported: the
	// answer is then the last good policy's, as the server's would be.
	policy, err := policies.Open(ctx, dataDir, db, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		policies.WithUsers(users.NewDirectory(db)))
	if err != nil {
		return false, err
	}
	for _, w := range policy.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
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
