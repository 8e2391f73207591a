//go:build linux

package loadtest

import (
	"testing"
	"time"
)

// TestProcessUsageCounts: touching memory fresh from the system counts
// page faults, and sleeping counts context switches, as the bench's
// faults/reply and switches/reply report them.
func TestProcessUsageCounts(t *testing.T) {
	const pages = 256
	before, ok := processUsage()
	if !ok {
		t.Fatal("getrusage failed")
	}
	// FaultCost touches pages mapped for it and never touched before:
	// each page's first write is a fault, whatever the Go heap holds.
	FaultCost(pages)
	for range 5 {
		time.Sleep(2 * time.Millisecond)
	}
	after, _ := processUsage()
	if got := after.faults - before.faults; got < pages {
		t.Errorf("%d page faults counted for %d fresh pages touched", got, pages)
	}
	if after.switches <= before.switches {
		t.Errorf("no context switch counted across five sleeps (%d, then %d)", before.switches, after.switches)
	}
	if after.cpu < before.cpu {
		t.Errorf("CPU time went back: %v, then %v", before.cpu, after.cpu)
	}
}

// FaultCost times faults it made itself: it reports a cost only when the
// pages it touched were counted as faults.
func TestFaultCost(t *testing.T) {
	d, ok := FaultCost(256)
	if !ok || d <= 0 {
		t.Fatalf("FaultCost(256) = %v, %v; want a positive time per fault", d, ok)
	}
}
