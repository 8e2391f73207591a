//go:build !linux

package loadtest

import "time"

// FaultCost is not measured here.
func FaultCost(int) (time.Duration, bool) { return 0, false }
