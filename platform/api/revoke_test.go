package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestTokensRevoked: a new password (set by the user or by an
// administrator) and log out everywhere end every token issued before, on
// HTTP and on open sockets, at once; a new login works, in the same second
// too; other users' tokens are untouched.
func TestTokensRevoked(t *testing.T) {
	for _, tc := range []struct {
		name string
		// revoke ends carol's tokens; it returns her password afterwards.
		revoke func(t *testing.T, in *apptest.Instance, carol user, carolTok, adminTok string) string
	}{
		{"the user changes her password", func(t *testing.T, in *apptest.Instance, carol user, carolTok, _ string) string {
			if r := in.Do("PUT", "/users/"+carol.ID, map[string]string{"password": "carol-new"}, apptest.Bearer(carolTok)...); r.Status != 200 {
				t.Fatalf("carol changes her password: %d %s", r.Status, r.Body)
			}
			return "carol-new"
		}},
		{"an administrator changes her password", func(t *testing.T, in *apptest.Instance, carol user, _, adminTok string) string {
			if r := in.Do("PUT", "/users/"+carol.ID, map[string]string{"password": "carol-reset"}, apptest.Bearer(adminTok)...); r.Status != 200 {
				t.Fatalf("admin resets carol's password: %d %s", r.Status, r.Body)
			}
			return "carol-reset"
		}},
		{"she logs out everywhere", func(t *testing.T, in *apptest.Instance, _ user, carolTok, _ string) string {
			if r := in.Do("POST", "/auth/logout", nil, apptest.Bearer(carolTok)...); r.Status != http.StatusNoContent {
				t.Fatalf("carol logs out: %d %s", r.Status, r.Body)
			}
			return "carol-pass"
		}},
		{"an administrator revokes her tokens", func(t *testing.T, in *apptest.Instance, carol user, _, adminTok string) string {
			if r := in.Do("DELETE", "/users/"+carol.ID+"/tokens", nil, apptest.Bearer(adminTok)...); r.Status != http.StatusNoContent {
				t.Fatalf("admin revokes carol's tokens: %d %s", r.Status, r.Body)
			}
			return "carol-pass"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := authRequired(t)
			adminTok := in.Login("admin", apptest.AdminPassword)
			perms := map[string][]string{"STATUS": {"READ"}, "CONVERSATION": {"READ", "WRITE"}, "USERS": {"READ", "EDIT"}}
			var carol, dave user
			in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-pass", "permissions": perms}, apptest.Bearer(adminTok)...).JSON(t, &carol)
			in.Do("POST", "/users", map[string]any{"username": "dave", "password": "dave-pass", "permissions": perms}, apptest.Bearer(adminTok)...).JSON(t, &dave)
			phone := in.Login("carol", "carol-pass")
			laptop := in.Login("carol", "carol-pass")
			daveTok := in.Login("dave", "dave-pass")
			for _, tok := range []string{phone, laptop, daveTok} {
				if r := in.Do("GET", "/", nil, apptest.Bearer(tok)...); r.Status != 200 {
					t.Fatalf("token before: %d", r.Status)
				}
			}
			carolSock := dial(t, in, "/ws?token="+laptop)
			daveSock := dial(t, in, "/ws?token="+daveTok)

			password := tc.revoke(t, in, carol, phone, adminTok)

			for name, tok := range map[string]string{"phone": phone, "laptop": laptop} {
				r := in.Do("GET", "/", nil, apptest.Bearer(tok)...)
				if r.Status != http.StatusForbidden || !strings.Contains(r.Detail(), "revoked") {
					t.Errorf("carol's %s token after: %d %q, want 403 saying it was revoked", name, r.Status, r.Detail())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := carolSock.conn.Read(ctx)
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "revoked: log in again") {
				t.Errorf("carol's socket: %v, want closed with 1008 saying her credentials were revoked", err)
			}

			// A new login, within the same second, works on both.
			fresh := in.Login("carol", password)
			if r := in.Do("GET", "/", nil, apptest.Bearer(fresh)...); r.Status != 200 {
				t.Errorf("carol's new token: %d %s", r.Status, r.Body)
			}
			sock := dial(t, in, "/ws?token="+fresh)
			sock.send(map[string]string{"text": "hello again"})
			sock.reply()

			// Dave is not affected, on HTTP or on his socket.
			if r := in.Do("GET", "/", nil, apptest.Bearer(daveTok)...); r.Status != 200 {
				t.Errorf("dave's token: %d", r.Status)
			}
			daveSock.send(map[string]string{"text": "still here?"})
			daveSock.reply()
		})
	}
}

// TestLogoutNeedsAToken: log out revokes grin's own tokens; a key cannot
// be revoked, and without credentials there is no one to log out.
func TestLogoutNeedsAToken(t *testing.T) {
	in := authRequired(t)
	if r := in.Do("POST", "/auth/logout", nil); r.Status != http.StatusForbidden {
		t.Errorf("without credentials: %d, want 403", r.Status)
	}
	r := in.Do("POST", "/auth/logout", nil, "Authorization", "Bearer "+testAPIKey)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Detail(), "api_key") {
		t.Errorf("with the API key: %d %q, want 400 explaining a key cannot be revoked", r.Status, r.Detail())
	}
	// A base user, without USERS permissions, logs themself out.
	tok := in.Login("user", apptest.UserPassword)
	if r := in.Do("POST", "/auth/logout", nil, apptest.Bearer(tok)...); r.Status != http.StatusNoContent {
		t.Errorf("base user logs out: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/", nil, apptest.Bearer(tok)...); r.Status != http.StatusForbidden {
		t.Errorf("after log out: %d, want 403", r.Status)
	}
}
