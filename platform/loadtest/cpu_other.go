//go:build !unix

package loadtest

// processUsage is not measured here.
func processUsage() (usage, bool) { return usage{}, false }
