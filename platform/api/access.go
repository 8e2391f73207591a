package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/policies"
)

// Security scheme names in the OpenAPI document.
const (
	schemeBearer      = "bearer"
	schemeAccessToken = "access_token"
	schemeUserID      = "user_id"
)

// needKey keys an operation's requirement in its Metadata.
type needKey struct{}

// need is what an operation requires of its caller: a policy object and
// action. Cat operations name the Cat resource and permission too, which
// custom auth handlers are shown and the document prints.
type need struct {
	public bool
	// authenticated operations need credentials and nothing more: what
	// they do concerns only the caller (log out).
	authenticated bool
	object        string
	action        string
	resource      policies.Resource
	permission    policies.Permission
	// audit is the audit log's action for the operation's requests; empty
	// for those that change nothing (see audited).
	audit string
}

// public operations need no credentials.
var public = need{public: true}

// authenticated operations need any valid credentials.
var authenticated = need{authenticated: true}

// catNeed is the requirement of a Cat operation: resource and permission.
func catNeed(r policies.Resource, p policies.Permission) need {
	return need{object: r.Object(), action: p.Action(), resource: r, permission: p}
}

// objectNeed is the requirement of a grin operation on a policy object.
func objectNeed(object string, p policies.Permission) need {
	return need{object: object, action: p.Action(), permission: p}
}

func (n need) String() string {
	if n.authenticated {
		return "valid credentials"
	}
	if n.resource != "" {
		return string(n.resource) + " " + string(n.permission)
	}
	return n.object + " " + n.action
}

// register declares an operation with its requirement in one place: the
// middleware enforces it, and the document shows it as security
// requirements, an x-grin-permission extension and a 403 response.
func register[I, O any](s *Server, op huma.Operation, n need, h func(context.Context, *I) (*O, error)) {
	if op.Metadata == nil {
		op.Metadata = map[string]any{}
	}
	op.Metadata["need"] = n
	if !n.public {
		op.Security = []map[string][]string{
			{schemeBearer: {}},
			{schemeBearer: {}, schemeUserID: {}},
			{schemeAccessToken: {}},
			{schemeAccessToken: {}, schemeUserID: {}},
		}
		if op.Extensions == nil {
			op.Extensions = map[string]any{}
		}
		if !n.authenticated {
			op.Extensions["x-grin-permission"] = map[string]string{"object": n.object, "action": n.action, "cat": n.String()}
		}
		op.Errors = append(op.Errors, http.StatusForbidden)
		op.Description = strings.TrimSpace(op.Description + "\n\nRequires " + n.String() + ".")
	}
	op.Errors = append(op.Errors, http.StatusUnprocessableEntity)
	if n.audit != "" {
		// The audit entry says how the handler ended, in its own words.
		inner := h
		h = func(ctx context.Context, in *I) (*O, error) { return serve(ctx, in, inner) }
	}
	huma.Register(s.api, op, h)
}

// authorize is the one middleware that authenticates every operation and
// asks the policy whether the caller may do what the operation needs. The
// identity then rides on the context; handlers read it with auth.FromContext.
func (s *Server) authorize(ctx huma.Context, next func(huma.Context)) {
	n, _ := ctx.Operation().Metadata["need"].(need)
	ctx, rec := s.startAudit(ctx, n)
	defer s.finishAudit(ctx, rec)
	if n.public {
		next(ctx)
		return
	}
	if n.object == "" && !n.authenticated {
		// An operation registered without register: refuse rather than
		// serve it unguarded.
		rec.refuse(http.StatusInternalServerError, "the operation declares no permission")
		huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "this operation declares no permission; refusing to serve it")
		return
	}
	id, err := s.deps.Auth.Authenticate(ctx.Context(), auth.Credentials{
		Protocol:   auth.HTTP,
		Token:      credential(ctx),
		UserID:     ctx.Header("user_id"),
		Resource:   n.resource,
		Permission: n.permission,
	})
	if err != nil {
		if auth.IsInvalidCredentials(err) {
			rec.refuse(http.StatusForbidden, "the credentials were refused")
		} else {
			rec.refuse(http.StatusServiceUnavailable, "the credentials could not be checked")
		}
		s.writeAuthError(ctx, err)
		return
	}
	rec.actor(actorOf(id))
	if n.authenticated {
		next(huma.WithContext(ctx, auth.WithIdentity(ctx.Context(), id)))
		return
	}
	allowed, err := s.decide(id, n.object, n.action)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx.Context(), "policy decision failed", "err", err)
		rec.refuse(http.StatusInternalServerError, "the policy could not decide")
		huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "the policy could not decide this request; see the server log")
		return
	}
	if !allowed {
		msg := fmt.Sprintf("Permission denied: this needs %s, which is not granted to %s", n, id.Name)
		if d := s.explain(id, n.object, n.action); d.Denied {
			msg = fmt.Sprintf("Permission denied: this needs %s, which %s may not use: %s", n, id.Name, d.Reason())
		}
		rec.refuse(http.StatusForbidden, msg)
		huma.WriteErr(s.api, ctx, http.StatusForbidden, msg)
		return
	}
	// Whoever passes is the author of any policy version the request
	// makes (a rule change, a rename of a user the rules name).
	next(huma.WithContext(ctx, policies.WithAuthor(auth.WithIdentity(ctx.Context(), id), author(id))))
}

// author names id in policy versions: a user by name and id, anyone else
// by name and the credential they act through.
func author(id auth.Identity) string {
	if id.Method == auth.MethodJWT {
		return fmt.Sprintf("%s (%s)", id.Name, id.ID)
	}
	return fmt.Sprintf("%s via %s", id.Name, strings.Join(id.Subjects, ", "))
}

func (s *Server) writeAuthError(ctx huma.Context, err error) {
	if errors.Is(err, auth.ErrTokenRevoked) {
		// The holder had a valid token: telling them why helps, and
		// reveals nothing they did not know.
		huma.WriteErr(s.api, ctx, http.StatusForbidden, "Invalid Credentials: your credentials were revoked: log in again")
		return
	}
	if auth.IsInvalidCredentials(err) {
		// The reason goes to the log at debug level, never the secret.
		s.deps.Logger.DebugContext(ctx.Context(), "authentication refused", "path", ctx.URL().Path, "reason", err)
		huma.WriteErr(s.api, ctx, http.StatusForbidden, "Invalid Credentials")
		return
	}
	s.deps.Logger.ErrorContext(ctx.Context(), "authentication failed", "err", err)
	huma.WriteErr(s.api, ctx, http.StatusServiceUnavailable, "grin could not check your credentials just now; try again")
}

// credential reads the bearer token, or the Cat's legacy access_token header.
func credential(ctx huma.Context) string {
	if h := ctx.Header("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return strings.TrimSpace(ctx.Header("access_token"))
}

// identity returns the caller, which the middleware put on the context.
func identity(ctx context.Context) auth.Identity {
	id, _ := auth.FromContext(ctx)
	return id
}

// allowed asks the policy about an object that depends on the request, for
// handlers whose object is not fixed (another user's data).
func (s *Server) allowed(ctx context.Context, object string, p policies.Permission) (bool, error) {
	return s.decide(identity(ctx), object, p.Action())
}

// decide asks the policy whether id may act on object.
func (s *Server) decide(id auth.Identity, object, action string) (bool, error) {
	return s.deps.Policy.Decide(policies.Request{Subjects: id.Subjects, Self: id.ID, Object: object, Action: action})
}

// explain says why id was refused object and action (Decision.Reason), or
// the zero Decision when the policy cannot say.
func (s *Server) explain(id auth.Identity, object, action string) policies.Decision {
	d, err := s.deps.Policy.Explain(policies.Request{Subjects: id.Subjects, Self: id.ID, Object: object, Action: action})
	if err != nil {
		s.deps.Logger.Error("policy explanation failed", "err", err)
		return policies.Decision{}
	}
	return d
}

// refused is the 403 for id refused action on object; a deny rule is
// named, so the caller learns why rather than only that.
func (s *Server) refused(id auth.Identity, object string, action policies.Permission) error {
	msg := fmt.Sprintf("Permission denied: you may not %s %s", action.Action(), object)
	if d := s.explain(id, object, action.Action()); d.Denied {
		msg += ": " + d.Reason()
	}
	return huma.Error403Forbidden(msg)
}

// internal logs an unexpected error for the log and gives the client a sentence.
func (s *Server) internal(ctx context.Context, what string, err error) error {
	s.deps.Logger.ErrorContext(ctx, what, "err", err)
	return huma.Error500InternalServerError(what + " failed; see the server log")
}
