package config

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:1865" || c.DataDir != "./grin-data" || c.JWTExpire != 24*time.Hour || !c.AuthOff() {
		t.Errorf("defaults = %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	e := env(map[string]string{
		"CCAT_API_KEY":            "cat-key-0123456789",
		"CCAT_JWT_EXPIRE_MINUTES": "0.5",
		"GRIN_JWT_EXPIRE_MINUTES": "2",
		"GRIN_ADDR":               "127.0.0.1:9000",
	})
	c, err := Load([]string{"--addr", "127.0.0.1:9100"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey.Reveal() != "cat-key-0123456789" {
		t.Errorf("CCAT_API_KEY alias not read: %q", c.APIKey.Reveal())
	}
	if c.JWTExpire != 2*time.Minute {
		t.Errorf("GRIN_ must win over CCAT_: %v", c.JWTExpire)
	}
	if c.Addr != "127.0.0.1:9100" {
		t.Errorf("the flag must win over GRIN_: %v", c.Addr)
	}
}

func TestFractionalExpiry(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"GRIN_JWT_EXPIRE_MINUTES": "0.25"}), io.Discard)
	if err != nil || c.JWTExpire != 15*time.Second {
		t.Errorf("0.25 minutes = %v, %v", c.JWTExpire, err)
	}
}

func TestLoopbackGuard(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"loopback", map[string]string{"GRIN_ADDR": "127.0.0.1:1865"}, true},
		{"localhost", map[string]string{"GRIN_ADDR": "localhost:1865"}, true},
		{"ipv6 loopback", map[string]string{"GRIN_ADDR": "[::1]:1865"}, true},
		{"all interfaces", map[string]string{"GRIN_ADDR": "0.0.0.0:1865"}, false},
		{"empty host", map[string]string{"GRIN_ADDR": ":1865"}, false},
		{"a LAN address", map[string]string{"GRIN_ADDR": "192.168.1.5:1865"}, false},
		{"with API key", map[string]string{"GRIN_ADDR": "0.0.0.0:1865", "GRIN_API_KEY": "k-0123456789abcdef"}, true},
		{"auth required", map[string]string{"GRIN_ADDR": "0.0.0.0:1865", "GRIN_AUTH": "required"}, true},
		{"insecure", map[string]string{"GRIN_ADDR": "0.0.0.0:1865", "GRIN_INSECURE": "1"}, true},
		{"WS key alone leaves HTTP open", map[string]string{"GRIN_ADDR": "0.0.0.0:1865", "GRIN_API_KEY_WS": "k-0123456789abcdef"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, env(tc.env), io.Discard)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("started without authentication beyond loopback")
				}
				for _, want := range []string{"GRIN_API_KEY", "GRIN_AUTH=required", "GRIN_INSECURE=1"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the message should say how to enable auth (%s): %v", want, err)
					}
				}
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Load(nil, env(map[string]string{
		"GRIN_JWT_EXPIRE_MINUTES": "soon",
		"GRIN_LOG_LEVEL":          "loud",
		"GRIN_AUTH":               "maybe",
	}), io.Discard)
	if err == nil {
		t.Fatal("accepted bad settings")
	}
	for _, want := range []string{"GRIN_JWT_EXPIRE_MINUTES", "GRIN_LOG_LEVEL", "GRIN_AUTH"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	_, err = Load(nil, env(map[string]string{"GRIN_JWT_SECRET": "secret", "GRIN_API_KEY": "short"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GRIN_JWT_SECRET") || !strings.Contains(err.Error(), "GRIN_API_KEY") {
		t.Errorf("weak secrets: %v", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"GRIN_API_KEY": "super-secret-key-123"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.APIKey.String(), strings.Join([]string{string(must(c.APIKey.MarshalText()))}, ""), c.APIKey.LogValue().String()} {
		if strings.Contains(s, "super-secret") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func must(b []byte, _ error) []byte { return b }

func TestHelp(t *testing.T) {
	var out strings.Builder
	_, err := Load([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "GRIN_API_KEY") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
}

func TestMemorySettings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		want  string // in the error; "" for none
		check func(Memory) bool
	}{
		{"default is embedded", nil, "", func(m Memory) bool { return m.Backend == "embedded" && m.Weaviate.ColdAfter == 15*time.Minute }},
		{"weaviate", map[string]string{"GRIN_MEMORY": "weaviate", "GRIN_WEAVIATE_URL": "http://10.0.0.5:8080", "GRIN_WEAVIATE_GRPC_PORT": "50052", "GRIN_WEAVIATE_REPLICATION": "3", "GRIN_WEAVIATE_COLD_AFTER": "0"}, "",
			func(m Memory) bool {
				w := m.Weaviate
				return m.Backend == "weaviate" && w.URL == "http://10.0.0.5:8080" && w.GRPCPort == 50052 && w.Replication == 3 && w.ColdAfter == 0 && w.Prefix == "Grin"
			}},
		{"weaviate needs a URL", map[string]string{"GRIN_MEMORY": "weaviate"}, "GRIN_WEAVIATE_URL", nil},
		{"a cluster's nodes", map[string]string{"GRIN_MEMORY": "weaviate", "GRIN_WEAVIATE_URL": "http://a:8080,http://b:8081", "GRIN_WEAVIATE_GRPC_PORT": "50051, 50052"}, "",
			func(m Memory) bool {
				return m.Weaviate.GRPCPort == 50051 && len(m.Weaviate.GRPCPorts) == 2 && m.Weaviate.GRPCPorts[1] == 50052
			}},
		{"ports and URLs disagree", map[string]string{"GRIN_MEMORY": "weaviate", "GRIN_WEAVIATE_URL": "http://a:8080,http://b:8081,http://c:8082", "GRIN_WEAVIATE_GRPC_PORT": "50051,50052"}, "lists 2 ports for the 3 URLs", nil},
		{"bad port in a list", map[string]string{"GRIN_WEAVIATE_GRPC_PORT": "50051,x"}, "GRIN_WEAVIATE_GRPC_PORT", nil},
		{"unknown backend", map[string]string{"GRIN_MEMORY": "qdrant"}, `GRIN_MEMORY: must be "embedded" or "weaviate"`, nil},
		{"bad port", map[string]string{"GRIN_WEAVIATE_GRPC_PORT": "70000"}, "GRIN_WEAVIATE_GRPC_PORT", nil},
		{"bad prefix", map[string]string{"GRIN_WEAVIATE_PREFIX": "grin-x"}, "GRIN_WEAVIATE_PREFIX", nil},
		{"bad cold", map[string]string{"GRIN_WEAVIATE_COLD_AFTER": "-1m"}, "GRIN_WEAVIATE_COLD_AFTER", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(nil, env(tc.env), io.Discard)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one naming %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c.Memory) {
				t.Errorf("memory = %+v", c.Memory)
			}
		})
	}
}

func TestSocketsPerUser(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{nil, 16},
		{map[string]string{"GRIN_MAX_SOCKETS_PER_USER": "4"}, 4},
		{map[string]string{"CCAT_MAX_SOCKETS_PER_USER": "0"}, 0},
	} {
		c, err := Load(nil, env(tc.env), io.Discard)
		if err != nil || c.MaxSocketsPerUser != tc.want {
			t.Errorf("%v: %d, %v; want %d", tc.env, c.MaxSocketsPerUser, err, tc.want)
		}
	}
	for _, bad := range []string{"-1", "many", "1.5"} {
		if _, err := Load(nil, env(map[string]string{"GRIN_MAX_SOCKETS_PER_USER": bad}), io.Discard); err == nil || !strings.Contains(err.Error(), "GRIN_MAX_SOCKETS_PER_USER") {
			t.Errorf("%q: %v, want an error naming the variable", bad, err)
		}
	}
}

// TestSecurityLimits: the limits of the security work read their
// defaults, take a value, and refuse one out of range naming the variable
// (through the shared whole-number and duration parsers).
func TestSecurityLimits(t *testing.T) {
	defaults, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if defaults.Login.PerAddress != 2 || defaults.Ingest.MaxPoints != 10_000 || defaults.Ingest.UserQuota != 100_000 ||
		defaults.PluginInitTimeout != 2*time.Second || defaults.PluginCaps.LLMTimeout != 30*time.Second || defaults.PluginLogEntries != 200 {
		t.Errorf("defaults: login %+v, ingest %+v, init %v, llm %v, log entries %d",
			defaults.Login, defaults.Ingest, defaults.PluginInitTimeout, defaults.PluginCaps.LLMTimeout, defaults.PluginLogEntries)
	}
	runSettingCases(t, []settingCase{
		{"GRIN_LOGIN_PER_ADDRESS", "5", "", func(c Config) bool { return c.Login.PerAddress == 5 }},
		{"GRIN_LOGIN_PER_ADDRESS", "0", "from 1 to 1024", nil},
		{"GRIN_LOGIN_PER_ADDRESS", "2000", "from 1 to 1024", nil},
		{"GRIN_UPLOAD_MAX_POINTS", "50", "", func(c Config) bool { return c.Ingest.MaxPoints == 50 }},
		{"GRIN_UPLOAD_MAX_POINTS", "-3", "whole number", nil},
		{"GRIN_PLUGIN_INIT_TIMEOUT", "500ms", "", func(c Config) bool { return c.PluginInitTimeout == 500*time.Millisecond }},
		{"GRIN_PLUGIN_INIT_TIMEOUT", "0s", "up to 10m", nil},
		{"GRIN_PLUGIN_INIT_TIMEOUT", "11m", "up to 10m", nil},
		{"GRIN_PLUGIN_LLM_TIMEOUT", "soon", "must be a duration", nil},
		{"GRIN_PLUGIN_LOG_ENTRIES", "0", "", func(c Config) bool { return c.PluginLogEntries == -1 }},
		{"GRIN_PLUGIN_LOG_ENTRIES", "-1", "from 0 to 100000", nil},
	})
}

// TestAuditRetention: GRIN_AUDIT_RETENTION keeps a year by default, takes
// days or a duration (or 0, for ever), and refuses less than a day.
func TestAuditRetention(t *testing.T) {
	defaults, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if defaults.AuditRetention != 365*24*time.Hour {
		t.Errorf("default retention %v, want 365 days", defaults.AuditRetention)
	}
	for _, tc := range []struct {
		value string
		want  time.Duration
		bad   bool
	}{
		{"30d", 30 * 24 * time.Hour, false},
		{"720h", 720 * time.Hour, false},
		{"0", 0, false},
		{"1d", 24 * time.Hour, false},
		{"12h", 0, true},
		{"-5d", 0, true},
		{"a year", 0, true},
		{"40000d", 0, true},
	} {
		c, err := Load([]string{"--audit-retention", tc.value}, env(nil), io.Discard)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "--audit-retention") || !strings.Contains(err.Error(), "from 1d to 36500d") {
				t.Errorf("%q: error %v, want one naming the flag and the range", tc.value, err)
			}
			continue
		}
		if err != nil || c.AuditRetention != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.value, c.AuditRetention, err, tc.want)
		}
	}
	if c, err := Load(nil, env(map[string]string{"GRIN_AUDIT_RETENTION": "90d"}), io.Discard); err != nil || c.AuditRetention != 90*24*time.Hour {
		t.Errorf("GRIN_AUDIT_RETENTION=90d: %v, %v", c.AuditRetention, err)
	}
}

// TestOpsSettings: who reads the metrics, the readiness checks' deadline
// and the shutdown's delay and timeout have secure defaults, take values
// and refuse nonsense naming the variable.
func TestOpsSettings(t *testing.T) {
	d, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d.Ops != (Ops{Metrics: MetricsAuth, ReadyTimeout: 2 * time.Second, ShutdownTimeout: 30 * time.Second}) {
		t.Errorf("defaults: %+v", d.Ops)
	}
	runSettingCases(t, []settingCase{
		{"GRIN_METRICS", "public", "", func(c Config) bool { return c.Ops.Metrics == MetricsPublic }},
		{"GRIN_METRICS", "loopback", "", func(c Config) bool { return c.Ops.Metrics == MetricsLoopback }},
		{"GRIN_METRICS", "off", "", func(c Config) bool { return c.Ops.Metrics == MetricsOff }},
		{"GRIN_METRICS", "yes", `must be "auth"`, nil},
		{"GRIN_READY_TIMEOUT", "500ms", "", func(c Config) bool { return c.Ops.ReadyTimeout == 500*time.Millisecond }},
		{"GRIN_READY_TIMEOUT", "0s", "up to 1m", nil},
		{"GRIN_SHUTDOWN_DELAY", "15s", "", func(c Config) bool { return c.Ops.ShutdownDelay == 15*time.Second }},
		{"GRIN_SHUTDOWN_DELAY", "-1s", "from 0 up to 10m", nil},
		{"GRIN_SHUTDOWN_TIMEOUT", "2m", "", func(c Config) bool { return c.Ops.ShutdownTimeout == 2*time.Minute }},
		{"GRIN_SHUTDOWN_TIMEOUT", "forever", "must be a duration", nil},
	})
}

// settingCase is one variable set to one value: refused with an error
// naming the variable and saying want, or (want "") taken as check says.
type settingCase struct {
	name, value string
	want        string // in the error; "" for none
	check       func(Config) bool
}

func runSettingCases(t *testing.T, cases []settingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			c, err := Load(nil, env(map[string]string{tc.name: tc.value}), io.Discard)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one naming %s and saying %q", err, tc.name, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("%s=%s not taken", tc.name, tc.value)
			}
		})
	}
}

// TestDatabaseSettings: the PostgreSQL pool and a user's turn lease have
// defaults, take values and refuse nonsense naming the variable.
func TestDatabaseSettings(t *testing.T) {
	d, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d.DatabaseConns != 16 || d.TurnLease != 30*time.Second {
		t.Errorf("defaults: %d connections, lease %v", d.DatabaseConns, d.TurnLease)
	}
	runSettingCases(t, []settingCase{
		{"GRIN_DATABASE_CONNS", "4", "", func(c Config) bool { return c.DatabaseConns == 4 }},
		{"GRIN_DATABASE_CONNS", "0", "from 1 to 1000", nil},
		{"GRIN_DATABASE_CONNS", "many", "from 1 to 1000", nil},
		{"GRIN_TURN_LEASE", "5s", "", func(c Config) bool { return c.TurnLease == 5*time.Second }},
		{"GRIN_TURN_LEASE", "0s", "GRIN_TURN_LEASE", nil},
		{"GRIN_TURN_LEASE", "2h", "GRIN_TURN_LEASE", nil},
	})
}
