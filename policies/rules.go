package policies

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors of single-rule changes; package api maps them.
var (
	// ErrRuleExists: the rule to add is in the policy already.
	ErrRuleExists = errors.New("the policy already has this rule")
	// ErrRuleNotFound: the rule to remove is not in the policy.
	ErrRuleNotFound = errors.New("the policy has no such rule")
)

// parseRule reads one rule as policy.csv writes it ("p, role:x, obj, read").
func parseRule(rule string) ([]string, error) {
	rule = strings.TrimSpace(rule)
	if rule == "" || strings.HasPrefix(rule, "#") || strings.ContainsAny(rule, "\r\n") {
		return nil, fmt.Errorf("%w: a rule is one line such as \"p, role:legal, declarative:contracts, read\"", ErrInvalid)
	}
	r := csv.NewReader(strings.NewReader(rule))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %q does not read as a rule: %v", ErrInvalid, rule, err)
	}
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields, nil
}

// sameRule reports whether two rules are the same, an effect left out
// being allow.
func sameRule(a, b []string) bool {
	trim := func(f []string) []string {
		if len(f) == 5 && f[0] == "p" && f[4] == "allow" {
			return f[:4]
		}
		return f
	}
	return slices.Equal(trim(a), trim(b))
}

// AddRule is the edit that appends one rule to policy.csv. It is checked
// as any change is (Change); a rule the policy already has is
// ErrRuleExists.
func AddRule(rule string) Change {
	return func(d Documents) (Documents, error) {
		fields, err := parseRule(rule)
		if err != nil {
			return Documents{}, err
		}
		for i, l := range splitPolicy(d.Policy) {
			if l.fields != nil && sameRule(l.fields, fields) {
				return Documents{}, fmt.Errorf("%w: %s (policy.csv line %d)", ErrRuleExists, strings.TrimSpace(l.text), i+1)
			}
		}
		if d.Policy != "" && !strings.HasSuffix(d.Policy, "\n") {
			d.Policy += "\n"
		}
		d.Policy += joinFields(fields) + "\n"
		return d, nil
	}
}

// RemoveRule is the edit that takes one rule out of policy.csv (every line
// that says it). A rule the policy does not have is ErrRuleNotFound.
func RemoveRule(rule string) Change {
	return func(d Documents) (Documents, error) {
		fields, err := parseRule(rule)
		if err != nil {
			return Documents{}, err
		}
		lines := splitPolicy(d.Policy)
		kept := lines[:0]
		for _, l := range lines {
			if l.fields != nil && sameRule(l.fields, fields) {
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) == len(lines) {
			return Documents{}, fmt.Errorf("%w: %s is not a line of policy.csv", ErrRuleNotFound, joinFields(fields))
		}
		d.Policy = joinLines(kept)
		return d, nil
	}
}

// memberRule is the rule that makes subject a member of role.
func memberRule(role, subject string) (string, error) {
	if !strings.HasPrefix(role, RolePrefix) || len(role) == len(RolePrefix) {
		return "", fmt.Errorf("%w: %q is not a role; roles are named role:<name>", ErrInvalid, role)
	}
	return joinFields([]string{"g", subject, role}), nil
}

// AddMember is the edit that makes subject (as policy.csv writes it, a
// user as user:<username>) a member of role: "g, subject, role".
func AddMember(role, subject string) Change {
	return func(d Documents) (Documents, error) {
		rule, err := memberRule(role, subject)
		if err != nil {
			return Documents{}, err
		}
		return AddRule(rule)(d)
	}
}

// RemoveMember is the edit that takes subject out of role.
func RemoveMember(role, subject string) Change {
	return func(d Documents) (Documents, error) {
		rule, err := memberRule(role, subject)
		if err != nil {
			return Documents{}, err
		}
		return RemoveRule(rule)(d)
	}
}
