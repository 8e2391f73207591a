//go:build unix

package loadtest

import (
	"syscall"
	"time"
)

// processUsage is what this process has used so far: CPU time (user and
// system), page faults served without I/O, and context switches.
func processUsage() (usage, bool) {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return usage{}, false
	}
	return usage{
		cpu:      time.Duration(u.Utime.Nano() + u.Stime.Nano()),
		faults:   int64(u.Minflt),
		switches: int64(u.Nvcsw + u.Nivcsw),
	}, true
}
