package wasmhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/policies"
)

// Host capabilities: what a hook may ask of grin beyond changing its
// payload, as a Cat plugin does with its cat object. Each is declared in
// the manifest ("capabilities": {"memory.recall": {}}), and granted to the
// plugin in the policy, to the subject "plugin:<id>" on the object
// "capability:<name>" with the action "use". Nothing is granted by
// default. A memory capability acts as the user the hook runs for, and
// reaches only what that user's policy lets them reach.
//
// The ABI (in grin_v2 and grin_v1 alike, beside the hook functions):
//
//	host_call(name_ptr, name_len, req_ptr, req_len i32) i32
//	    runs the operation name with the JSON request; returns the length
//	    of the JSON answer, {"ok": …} or {"error": {"code", "message"}}
//	host_result(ptr, len i32) i32
//	    copies the last answer into guest memory; returns the bytes copied
const (
	CapMemoryRecall = "memory.recall"
	CapMemoryStore  = "memory.store"
	CapKV           = "kv"
	CapNotify       = "notify"
	CapLLMComplete  = "llm.complete"
	CapHTTPFetch    = "http.fetch"
)

// KnownCapabilities are the capabilities a manifest may declare.
var KnownCapabilities = []string{CapMemoryRecall, CapMemoryStore, CapKV, CapNotify, CapLLMComplete, CapHTTPFetch}

// operation is one host_call: the capability it needs and what it does.
type operation struct {
	capability string
	run        func(c *capCall, ctx context.Context, req []byte) (any, error)
}

// operations are the host calls grin offers, by name: the one place that
// says what each needs and runs.
var operations = map[string]operation{
	"memory.recall": {CapMemoryRecall, (*capCall).recall},
	"memory.store":  {CapMemoryStore, (*capCall).store},
	"kv.get":        {CapKV, (*capCall).kvGet},
	"kv.set":        {CapKV, (*capCall).kvSet},
	"kv.delete":     {CapKV, (*capCall).kvDelete},
	"notify":        {CapNotify, (*capCall).notify},
	"llm.complete":  {CapLLMComplete, (*capCall).complete},
	"http.fetch":    {CapHTTPFetch, (*capCall).fetch},
}

// CapabilitySpec is what a manifest declares of one capability.
type CapabilitySpec struct {
	// Hosts are the hosts http.fetch may reach, as "api.example.com" or
	// "api.example.com:8443"; each still needs the administrator's grant.
	Hosts []string `json:"hosts,omitempty" doc:"Hosts http.fetch may reach (each also needs the administrator's grant)."`
}

// Error codes a guest reads in a refused or failed host call.
const (
	CodeUnknown     = "unknown"     // no such operation
	CodeUndeclared  = "undeclared"  // the manifest does not declare the capability
	CodeDenied      = "denied"      // the policy does not grant it to the plugin
	CodeForbidden   = "forbidden"   // the user the hook runs for may not do this
	CodeInvalid     = "invalid"     // the request is malformed
	CodeQuota       = "quota"       // a limit would be exceeded
	CodeUnavailable = "unavailable" // not here: no user, no capabilities configured
	CodeFailed      = "failed"      // the operation was tried and failed
)

// CapabilityError is a host call's failure as the guest sees it.
type CapabilityError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *CapabilityError) Error() string { return e.Code + ": " + e.Message }

func capErr(code, format string, args ...any) *CapabilityError {
	return &CapabilityError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Capability limits, unless the administrator says otherwise.
const (
	DefaultKVQuotaBytes  = 1 << 20
	DefaultKVMaxKeyBytes = 256
	DefaultRecallMaxK    = 100
	DefaultLLMTimeout    = 30 * time.Second
	DefaultLLMMaxTokens  = 1024
	DefaultFetchMaxBytes = 1 << 20
	DefaultFetchTimeout  = 10 * time.Second
	// maxNotifyBytes bounds one notification's content.
	maxNotifyBytes = 64 << 10
)

// CapabilityLimits bound what capabilities may do.
type CapabilityLimits struct {
	// KVQuotaBytes bounds each key-value store (one per plugin and user,
	// one per plugin): keys and values together.
	KVQuotaBytes int
	// LLMTimeout and LLMMaxTokens bound one llm.complete call.
	LLMTimeout   time.Duration
	LLMMaxTokens int
	// FetchMaxBytes and FetchTimeout bound one http.fetch call.
	FetchMaxBytes int64
	FetchTimeout  time.Duration
}

func (l *CapabilityLimits) defaults() {
	l.KVQuotaBytes = positiveOr(l.KVQuotaBytes, DefaultKVQuotaBytes)
	l.LLMTimeout = positiveOr(l.LLMTimeout, DefaultLLMTimeout)
	l.LLMMaxTokens = positiveOr(l.LLMMaxTokens, DefaultLLMMaxTokens)
	l.FetchMaxBytes = positiveOr(l.FetchMaxBytes, DefaultFetchMaxBytes)
	l.FetchTimeout = positiveOr(l.FetchTimeout, DefaultFetchTimeout)
}

// HostServices are the parts of grin capabilities act on.
type HostServices struct {
	Policy    *policies.Enforcer
	Scope     *memory.Scope
	Store     memory.Store
	Providers *llm.Current
	Sessions  *session.Registry
	// AllowPrivate lets http.fetch reach internal addresses, as
	// GRIN_RABBITHOLE_ALLOW_PRIVATE does for the rabbit hole.
	AllowPrivate bool
	Limits       CapabilityLimits
}

// capabilities serves host calls.
//
// Notes: safe for concurrent use.
type capabilities struct {
	HostServices
	db       *sql.DB
	declared func(plugin string) map[string]CapabilitySpec
}

// PluginSubject is the policy subject of a plugin.
func PluginSubject(id string) string { return "plugin:" + id }

// CapabilityObject is the policy object of a capability.
func CapabilityObject(name string) string { return "capability:" + name }

// CapabilityAction is the action a grant is written with.
const CapabilityAction = "use"

// EnableCapabilities lets the manager's plugins call the host
// capabilities their manifests declare and the policy grants. Until it is
// called, every host call answers "unavailable".
func (m *Manager) EnableCapabilities(h HostServices) {
	h.Limits.defaults()
	m.engine.caps.Store(&capabilities{HostServices: h, db: m.db, declared: m.declaredCapabilities})
}

func (m *Manager) declaredCapabilities(plugin string) map[string]CapabilitySpec {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.plugins[plugin]; l != nil {
		return l.info.Capabilities
	}
	return nil
}

// validateCapabilities checks a manifest's capabilities.
func validateCapabilities(caps map[string]CapabilitySpec) []string {
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(caps)) {
		spec := caps[name]
		if !slices.Contains(KnownCapabilities, name) {
			errs = append(errs, fmt.Sprintf("capability %q is not one grin offers (they are: %s)", name, strings.Join(KnownCapabilities, ", ")))
			continue
		}
		if name != CapHTTPFetch && len(spec.Hosts) > 0 {
			errs = append(errs, fmt.Sprintf("capability %q takes no hosts", name))
		}
		if name == CapHTTPFetch && len(spec.Hosts) == 0 {
			errs = append(errs, `capability "http.fetch" must list the hosts it reaches ("hosts": ["api.example.com"])`)
		}
		for _, h := range spec.Hosts {
			if !validHost(h) {
				errs = append(errs, fmt.Sprintf("http.fetch host %q must be a host name or address, with an optional port, and nothing else", h))
			}
		}
	}
	return errs
}

func validHost(h string) bool {
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/@?#* ") {
		return false
	}
	return strings.ToLower(h) == h
}

// hostCall is what a call's host functions need to know beyond the
// instance: set by Plugin.run (for Call and Invoke) for the length of one
// hook call.
type hostCall struct {
	ctx context.Context // the request's: carries the identity, ends with it
}

// capabilityFunctions adds host_call and host_result to the host module.
func (e *Engine) capabilityFunctions(b wazero.HostModuleBuilder, state func(context.Context) *callState) {
	i32 := api.ValueTypeI32
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		nptr, nlen := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		rptr, rlen := api.DecodeU32(stack[2]), api.DecodeU32(stack[3])
		s := state(ctx)
		if s == nil {
			stack[0] = 0
			return
		}
		if int(rlen) > DefaultMaxInput || nlen > 64 {
			panic("host_call: the request is too large")
		}
		name, ok := mod.Memory().Read(nptr, nlen)
		if !ok {
			panic("host_call: the name is outside the guest's memory")
		}
		req, ok := mod.Memory().Read(rptr, rlen)
		if !ok {
			panic("host_call: the request is outside the guest's memory")
		}
		s.hostResult = e.serveHostCall(ctx, s, string(name), req)
		stack[0] = api.EncodeU32(uint32(len(s.hostResult)))
	}), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("host_call")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		s := state(ctx)
		if s == nil {
			stack[0] = 0
			return
		}
		k := min(int(n), len(s.hostResult))
		if !mod.Memory().Write(ptr, s.hostResult[:k]) {
			panic("host_result: the buffer is outside the guest's memory")
		}
		stack[0] = api.EncodeU32(uint32(k))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("host_result")
}

// serveHostCall answers one host call with {"ok": …} or {"error": …}.
// instanceCtx ends when the watchdog stops the call, and so does the
// operation.
func (e *Engine) serveHostCall(instanceCtx context.Context, s *callState, name string, req []byte) []byte {
	res, err := e.hostOperation(instanceCtx, s, name, req)
	var out []byte
	if err != nil {
		var ce *CapabilityError
		if !errors.As(err, &ce) {
			ce = capErr(CodeFailed, "%s", err.Error())
		}
		e.logger.Debug("host call refused or failed", "plugin", s.plugin, "call", name, "code", ce.Code, "err", ce.Message)
		out, _ = json.Marshal(map[string]any{"error": ce})
		return out
	}
	out, err = json.Marshal(map[string]any{"ok": res})
	if err != nil {
		out, _ = json.Marshal(map[string]any{"error": capErr(CodeFailed, "encode the answer: %v", err)})
	}
	return out
}

func (e *Engine) hostOperation(instanceCtx context.Context, s *callState, name string, req []byte) (any, error) {
	op, ok := operations[name]
	capName := op.capability
	if !ok {
		return nil, capErr(CodeUnknown, "grin offers no host call %q (it offers %s)", name, strings.Join(slices.Sorted(maps.Keys(operations)), ", "))
	}
	c := e.caps.Load()
	if c == nil || s.host == nil {
		return nil, capErr(CodeUnavailable, "host calls are available only while a hook runs, on a server that offers them")
	}
	spec, declared := c.declared(s.plugin)[capName]
	if !declared {
		return nil, capErr(CodeUndeclared, "the plugin's manifest does not declare the capability %q", capName)
	}
	if capName != CapHTTPFetch { // http.fetch is granted per host
		if err := c.granted(s.plugin, CapabilityObject(capName)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(s.host.ctx)
	defer cancel()
	stop := context.AfterFunc(instanceCtx, cancel)
	defer stop()
	call := &capCall{caps: c, plugin: s.plugin, spec: spec}
	if id, ok := auth.FromContext(ctx); ok {
		call.user = &id
	}
	return op.run(call, ctx, req)
}

// granted asks the policy whether the plugin may use object.
func (c *capabilities) granted(plugin, object string) error {
	sub := PluginSubject(plugin)
	ok, err := c.Policy.Decide(policies.Request{Subjects: []string{sub}, Self: sub, Object: object, Action: CapabilityAction})
	if err != nil {
		return capErr(CodeFailed, "the policy could not decide: %v", err)
	}
	if !ok {
		return capErr(CodeDenied, "the policy does not grant %s %s (an administrator grants it with the rule: p, %s, %s, %s)", sub, object, sub, object, CapabilityAction)
	}
	return nil
}

// capCall is one host call.
type capCall struct {
	caps   *capabilities
	plugin string
	spec   CapabilitySpec
	user   *auth.Identity // nil when the hook runs for no identity
}

func (c *capCall) needUser() (auth.Identity, error) {
	if c.user == nil || c.user.ID == "" {
		return auth.Identity{}, capErr(CodeUnavailable, "this hook runs for no user")
	}
	return *c.user, nil
}

func decode(req []byte, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return capErr(CodeInvalid, "the request is not the JSON expected: %v", err)
	}
	return nil
}
