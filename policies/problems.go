package policies

import (
	"errors"
	"fmt"
	"strings"
)

// ErrLockout marks a model or policy that loads but would leave no internal
// user able to edit the policy (see Enforcer.Update).
var ErrLockout = errors.New("this policy would leave no user able to edit policies")

// Problem is one mistake in a model or policy, placed as precisely as the
// parsers allow.
type Problem struct {
	File    string // ModelFile or PolicyFile; empty when neither
	Line    int    // from 1; 0 when the mistake is not on one line
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", p.File, p.Line, p.Message)
	}
	if p.File == "" {
		return p.Message
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// InvalidError lists every problem found in a model and policy, so an
// administrator fixes them in one round instead of one per reload.
// errors.Is(err, ErrInvalid) holds for it.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Problems returns the problems an error from Update, Validate or a reload
// names: each line's mistake for an invalid document, one problem for
// anything else.
func Problems(err error) []Problem {
	if err == nil {
		return nil
	}
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Problems
	}
	if errors.Is(err, ErrLockout) {
		return []Problem{{File: PolicyFile, Message: err.Error()}}
	}
	return []Problem{{Message: err.Error()}}
}

// problems collects Problems while a document is checked.
type problems []Problem

func (ps *problems) add(file string, line int, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was found.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &InvalidError{Problems: ps}
}
