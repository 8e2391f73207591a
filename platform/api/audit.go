package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// An operation that changes something declares its audit action beside its
// permission (need.audited), and the audit log gets one entry per request
// to it, written in one place (authorize): the middleware knows the
// caller, the address and the status; register hands it the handler's
// error; the handler adds only what it alone knows, through the
// auditRecord on its context: the target, and the thing before and after.

// audited is n with an audit action: every request to the operation is
// recorded, allowed or not.
func (n need) audited(action string) need {
	n.audit = action
	return n
}

type auditKey struct{}

// auditRecord is the audit log entry of the request being served. Its
// methods do nothing on a nil record (an operation that is not audited,
// or a server without an audit log), so handlers call them unconditionally.
//
// Notes: a request's handler runs on one goroutine; a record is not shared.
type auditRecord struct {
	entry audit.Entry
	// status is the answer's status, as the middleware or the handler
	// decided it (huma's context does not say, once wrapped).
	status int
	// served and returned say how far the handler got: not served, huma
	// refused the input; served but not returned, it panicked.
	served, returned bool
	// err is the handler's error, for the entry's detail.
	err error
	// more are further entries of the same request, written with the
	// first when it succeeds (the tokens a new password revokes).
	more []audit.Entry
	// skip: the request changed nothing and asked for nothing to change
	// (a dry run).
	skip bool
}

func auditOf(ctx context.Context) *auditRecord {
	r, _ := ctx.Value(auditKey{}).(*auditRecord)
	return r
}

// target names what the request changes: a user's or plugin's id, a
// setting's, "policies".
func (r *auditRecord) target(t string) {
	if r != nil {
		r.entry.Target = t
	}
}

// before and after are the thing changed as it was and as it is (any
// value encoding/json takes; secrets are masked when written).
func (r *auditRecord) before(v any) {
	if r != nil {
		r.entry.Before = audit.JSON(v)
	}
}

func (r *auditRecord) after(v any) {
	if r != nil {
		r.entry.After = audit.JSON(v)
	}
}

// detail says what else happened.
func (r *auditRecord) detail(d string) {
	if r != nil {
		r.entry.Detail = d
	}
}

// actor replaces the caller (a login names who tried).
func (r *auditRecord) actor(a audit.Actor) {
	if r != nil {
		r.entry.Actor = a
	}
}

// also adds an entry of another action to the request's, by the same
// actor from the same address, written when the request succeeds.
func (r *auditRecord) also(action, target, detail string) {
	if r != nil {
		r.more = append(r.more, audit.Entry{Action: action, Target: target, Detail: detail})
	}
}

// dryRun marks a request that changes nothing: it is not recorded.
func (r *auditRecord) dryRun() {
	if r != nil {
		r.skip = true
	}
}

// startAudit puts a record for an audited operation on the request's
// context; finishAudit writes it once the answer is known.
func (s *Server) startAudit(ctx huma.Context, n need) (huma.Context, *auditRecord) {
	if n.audit == "" || s.deps.Audit == nil {
		return ctx, nil
	}
	rec := &auditRecord{entry: audit.Entry{
		Action: n.audit, Actor: audit.Actor{Kind: audit.ActorUnknown},
		Address: clientAddr(ctx.RemoteAddr(), ctx.Header("X-Forwarded-For"), s.deps.TrustedProxies).String(),
		Time:    time.Now(),
	}}
	return huma.WithContext(ctx, context.WithValue(ctx.Context(), auditKey{}, rec)), rec
}

// finishAudit writes the record: success below 400, refused for the
// caller's mistakes and the policy's refusals, failed for grin's own. An
// entry that cannot be written is logged at error level: the change
// itself stands, and the answer says so.
func (s *Server) finishAudit(ctx huma.Context, rec *auditRecord) {
	if rec == nil || rec.skip {
		return
	}
	e := rec.entry
	if e.Target == "" {
		// Refused before the handler named it: the path names it.
		e.Target = pathTarget(ctx)
	}
	status := rec.status
	switch {
	case status == 0 && !rec.served:
		// huma answered before the handler: the input is not valid.
		status = http.StatusUnprocessableEntity
	case status == 0:
		status = http.StatusInternalServerError // the handler panicked
	}
	switch {
	case status >= 500:
		e.Outcome = audit.Failed
	case status >= 400:
		e.Outcome = audit.Refused
	default:
		e.Outcome = audit.Success
	}
	if e.Outcome != audit.Success {
		why := http.StatusText(status)
		if !rec.served {
			why = "the request was not valid"
		}
		if rec.err != nil {
			why = rec.err.Error()
		}
		if e.Detail != "" {
			why = e.Detail + ": " + why
		}
		e.Detail = why
	}
	if rec.served && !rec.returned {
		e.Outcome = audit.Failed
	}
	// Recorded even when the client has gone: the change happened.
	bg := context.WithoutCancel(ctx.Context())
	entries := []audit.Entry{e}
	if e.Outcome == audit.Success {
		for _, m := range rec.more {
			m.Time, m.Actor, m.Address, m.Outcome = e.Time, e.Actor, e.Address, audit.Success
			entries = append(entries, m)
		}
	}
	for _, en := range entries {
		if _, err := s.deps.Audit.Append(bg, en); err != nil {
			s.deps.Logger.Error("a change is missing from the audit log", "action", en.Action, "target", en.Target, "err", err)
		}
	}
}

// pathTarget is the first parameter in the operation's path (a user's or
// plugin's id, a setting's), or the path itself.
func pathTarget(ctx huma.Context) string {
	path := ctx.Operation().Path
	if _, rest, ok := strings.Cut(path, "{"); ok {
		if name, _, ok := strings.Cut(rest, "}"); ok {
			if v := ctx.Param(name); v != "" {
				return v
			}
		}
	}
	return path
}

// serve runs an audited operation's handler h and notes in its record
// how it ended.
func serve[I, O any](ctx context.Context, in *I, h func(context.Context, *I) (*O, error)) (*O, error) {
	rec := auditOf(ctx)
	if rec == nil {
		return h(ctx, in)
	}
	rec.served = true
	out, err := h(ctx, in)
	rec.returned = true
	rec.status, rec.err = http.StatusOK, err
	if err != nil {
		rec.status = http.StatusInternalServerError
		var se huma.StatusError
		if errors.As(err, &se) {
			rec.status = se.GetStatus()
		}
	}
	return out, err
}

// refuse notes in rec an answer the middleware gives.
func (r *auditRecord) refuse(status int, why string) {
	if r != nil {
		r.status, r.err = status, errors.New(why)
	}
}

// actorOf is the audit log's name for an identity.
func actorOf(id auth.Identity) audit.Actor {
	kind := audit.ActorUser
	switch id.Method {
	case auth.MethodAPIKey:
		kind = audit.ActorAPIKey
	case auth.MethodWSKey:
		kind = audit.ActorWSKey
	case auth.MethodShadow:
		kind = audit.ActorAnonymous
	case auth.MethodHandler:
		kind = audit.ActorHandler
	}
	return audit.Actor{Kind: kind, ID: id.ID, Name: id.Name}
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64       `json:"id" doc:"The entry's number; entries are numbered in the order they were recorded."`
	Time    time.Time   `json:"time"`
	Actor   audit.Actor `json:"actor" doc:"Who: kind (user, api_key, ws_key, anonymous, handler, plugin, file, unknown), and the user's id and name."`
	Address string      `json:"address,omitempty" doc:"The client's address (behind a trusted proxy, the one it forwards for)."`
	Action  string      `json:"action" doc:"What: login, tokens.revoke, user.create, user.update, user.delete, policy.update, policy.file, plugin.install, plugin.toggle, plugin.delete, plugin.settings, plugin.isolation, setting.create, setting.update, setting.delete, llm.update, embedder.update, auth_handler.update."`
	Target  string      `json:"target,omitempty" doc:"What was changed: a user's id, a plugin's id, a setting's id, a configuration's name, policies."`
	Before  any         `json:"before,omitempty" doc:"The thing before the change, secrets masked."`
	After   any         `json:"after,omitempty" doc:"The thing after the change, secrets masked."`
	Outcome string      `json:"outcome" enum:"success,refused,failed" doc:"success; refused (a permission, a check, bad input, a wrong password: nothing changed); failed (grin's own error)."`
	Detail  string      `json:"detail,omitempty" doc:"Why it was refused or failed, or what else happened."`
}

// AuditPage is a page of the audit log.
type AuditPage struct {
	Entries []AuditEntry `json:"entries" doc:"Newest first."`
	Next    int64        `json:"next,omitempty" doc:"Send as before for the next (older) page; absent on the last page."`
}

// AuditQuery filters the audit log.
type AuditQuery struct {
	Actor     string `query:"actor" maxLength:"256" doc:"Only entries by this user (id or username)."`
	ActorKind string `query:"actor_kind" enum:"user,api_key,ws_key,anonymous,handler,plugin,file,unknown," doc:"Only entries by this kind of actor: user, api_key, ws_key, anonymous (authentication off), handler, plugin, file (the policy files), unknown (refused credentials)."`
	Action    string `query:"action" maxLength:"64" doc:"Only this action; a trailing * matches by prefix (plugin.*)."`
	Target    string `query:"target" maxLength:"256" doc:"Only changes to this target (a user's id or username, a plugin's id, …); a trailing * matches by prefix."`
	Since     string `query:"since" maxLength:"64" doc:"Only entries at or after this time (RFC 3339, e.g. 2026-01-31T00:00:00Z)."`
	Until     string `query:"until" maxLength:"64" doc:"Only entries at or before this time (RFC 3339)."`
	Before    int64  `query:"before" minimum:"0" doc:"Only entries older than this one: the previous page's next."`
	Limit     int    `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"How many entries at most."`
}

func (s *Server) registerAudit() {
	register(s, huma.Operation{
		OperationID: "listAudit", Method: http.MethodGet, Path: "/audit",
		Summary: "Read the audit log",
		Description: "Who changed users, permissions, policies, plugins and settings, every login (success and failure) and every token revocation: " +
			"when, from which address, the thing before and after (secrets masked), and how it ended. Newest first, a page at a time. " +
			"The log is append-only: no operation changes or deletes an entry; entries older than GRIN_AUDIT_RETENTION are pruned. grin extension.",
		Tags: []string{"Audit"},
	}, objectNeed(policies.AuditObject, policies.Read), func(ctx context.Context, in *AuditQuery) (*struct{ Body AuditPage }, error) {
		f := audit.Filter{Action: in.Action, ActorKind: audit.ActorKind(in.ActorKind), Before: in.Before, Limit: in.Limit}
		var errs []error
		for _, t := range []struct {
			name, v string
			to      *time.Time
		}{{"since", in.Since, &f.Since}, {"until", in.Until, &f.Until}} {
			if t.v == "" {
				continue
			}
			v, err := time.Parse(time.RFC3339, t.v)
			if err != nil {
				errs = append(errs, &huma.ErrorDetail{Location: "query." + t.name, Message: "must be a time such as 2026-01-31T00:00:00Z (RFC 3339)", Value: t.v})
				continue
			}
			*t.to = v
		}
		if len(errs) > 0 {
			return nil, huma.Error422UnprocessableEntity("since and until are RFC 3339 times", errs...)
		}
		var err error
		if f.Actor, err = s.alsoUserID(ctx, in.Actor); err != nil {
			return nil, err
		}
		if f.Target, err = s.alsoUserID(ctx, in.Target); err != nil {
			return nil, err
		}
		list, next, err := s.deps.Audit.List(ctx, f)
		if errors.Is(err, audit.ErrInvalid) {
			return nil, huma.Error422UnprocessableEntity(strings.TrimPrefix(err.Error(), audit.ErrInvalid.Error()+": "))
		}
		if err != nil {
			return nil, s.internal(ctx, "read the audit log", err)
		}
		page := AuditPage{Entries: make([]AuditEntry, 0, len(list)), Next: next}
		for _, e := range list {
			out := AuditEntry{ID: e.ID, Time: e.Time, Actor: e.Actor, Address: e.Address, Action: e.Action, Target: e.Target,
				Outcome: string(e.Outcome), Detail: e.Detail}
			if e.Before != nil {
				out.Before = e.Before
			}
			if e.After != nil {
				out.After = e.After
			}
			page.Entries = append(page.Entries, out)
		}
		return &struct{ Body AuditPage }{page}, nil
	})
}

// alsoUserID is a filter value, and when it is an internal user's
// username, that user's id too: entries name users by id, which stays
// when the name changes, and people by name.
func (s *Server) alsoUserID(ctx context.Context, v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	u, err := s.deps.Users.ByUsername(ctx, v)
	switch {
	case errors.Is(err, users.ErrNotFound), errors.Is(err, users.ErrInvalid):
		return []string{v}, nil
	case err != nil:
		return nil, s.internal(ctx, "look up user", err)
	}
	return []string{v, u.ID}, nil
}

// userRecord is a user as the audit log keeps it: the API's view, and
// whether the password changed (masked, it reads as ********).
type userRecord struct {
	User
	Password string `json:"password,omitempty"`
}

// passwordChanged marks a changed password in userRecord.
const passwordChanged = "changed"
