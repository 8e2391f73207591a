package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grin-ai/grin/policies"
	"github.com/grin-ai/grin/wasmhooks"
)

// Sources are the figures other parts of grin already keep; they are read
// at each scrape, never copied into counters of their own. A nil function
// leaves its figures out.
type Sources struct {
	// Plugins returns every installed plugin's figures by plugin id.
	Plugins func() map[string]wasmhooks.Stats
	// Policy returns the policy's decision and cache figures.
	Policy func() policies.Figures
	// Sessions returns the sessions in memory and the sockets open.
	Sessions func() (live, sockets int)
}

// Watch exports the figures of s.
func (m *Metrics) Watch(s Sources) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&sourceCollector{s: s})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	pluginCalls     = desc("plugin_hook_calls_total", "Hook calls made to a plugin, failed ones included, since it was installed or grin started.", "plugin")
	pluginErrors    = desc("plugin_hook_errors_total", "Hook calls of a plugin that failed (its error, a trap, too large an output, a deadline); the pipeline went on without them.", "plugin")
	pluginDeadlines = desc("plugin_hook_deadline_hits_total", "Hook calls of a plugin stopped by their deadline (counted in errors too).", "plugin")
	pluginSkipped   = desc("plugin_hook_skipped_total", "Hook calls not made because the plugin's instances could not start.", "plugin")
	pluginSeconds   = desc("plugin_hook_seconds_total", "Time spent in a plugin's hook calls.", "plugin")
	pluginInstances = desc("plugin_instances", "A plugin's live instances: idle in its pools or running a call.", "plugin")
	policyDecisions = desc("policy_decisions_total", "Access decisions of the policy, by result (allowed, denied, error).", "result")
	policyCache     = desc("policy_cache_lookups_total", "Policy decisions looked up in the decision cache, by result (hit, miss).", "result")
	policyLoads     = desc("policy_loads_total", "Policies put in force, by kind: whole (the files and every stored grant read afresh, at start and for an edit of the model) or in_place (an edit of the rules that changed only those rules).", "kind")
	sessionsLive    = desc("sessions_live", "Users' sessions (StrayCats) held in memory.")
	socketsOpen     = desc("websockets_open", "WebSockets open, every user's together.")
)

// sourceCollector reads Sources at each scrape.
type sourceCollector struct{ s Sources }

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pluginCalls, pluginErrors, pluginDeadlines, pluginSkipped, pluginSeconds,
		pluginInstances, policyDecisions, policyCache, policyLoads, sessionsLive, socketsOpen} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.s.Plugins != nil {
		for id, st := range c.s.Plugins() {
			counter(pluginCalls, float64(st.Calls), id)
			counter(pluginErrors, float64(st.Errors), id)
			counter(pluginDeadlines, float64(st.DeadlineHits), id)
			counter(pluginSkipped, float64(st.Skipped), id)
			counter(pluginSeconds, st.TimeSpentMS/1000, id)
			gauge(pluginInstances, float64(st.Instances), id)
		}
	}
	if c.s.Policy != nil {
		f := c.s.Policy()
		counter(policyDecisions, float64(f.Allowed), "allowed")
		counter(policyDecisions, float64(f.Denied), "denied")
		counter(policyDecisions, float64(f.Errors), "error")
		counter(policyCache, float64(f.CacheHits), "hit")
		counter(policyCache, float64(f.CacheMisses), "miss")
		counter(policyLoads, float64(f.Loads), "whole")
		counter(policyLoads, float64(f.EditsInPlace), "in_place")
	}
	if c.s.Sessions != nil {
		live, sockets := c.s.Sessions()
		gauge(sessionsLive, float64(live))
		gauge(socketsOpen, float64(sockets))
	}
}
