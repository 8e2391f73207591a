package loadtest

import (
	"syscall"
	"time"
)

// FaultCost is what one page fault costs this machine: it maps pages
// never touched, writes a byte to each, and divides the time taken by the
// faults counted. The pages are kept small (no transparent huge pages), so
// the figure is the price of the faults a run counts in 4 KiB pages. It prices a run's faults/reply: on virtual machines a
// fault can cost ten times what it does on bare metal, and a young
// process, whose heap and caches are still growing, takes several a reply.
func FaultCost(pages int) (time.Duration, bool) {
	size := pages * syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, false
	}
	defer syscall.Munmap(mem)
	if err := syscall.Madvise(mem, syscall.MADV_NOHUGEPAGE); err != nil {
		return 0, false
	}
	before, ok := processUsage()
	if !ok {
		return 0, false
	}
	start := time.Now()
	for i := 0; i < size; i += syscall.Getpagesize() {
		mem[i] = 1
	}
	took := time.Since(start)
	after, _ := processUsage()
	if n := after.faults - before.faults; n > 0 {
		return took / time.Duration(n), true
	}
	return 0, false
}
