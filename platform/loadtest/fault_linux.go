package loadtest

import (
	"syscall"
	"time"
)

// FaultCost is what one page fault costs this machine, to price a run's
// faults per reply: on virtual machines a fault costs several times what
// it does on bare metal, and a young process, whose heap and caches are
// still growing, takes several a reply.
//
// It maps as many pages as asked, never touched, writes a byte to each,
// and divides the time taken by the faults counted, kept to the system's
// page size (no transparent huge pages, where the kernel has them). It
// reports false when the count is not what touching them explains: fewer
// faults than pages (the memory came already mapped), or a tenth more
// (the rest of the process faulting meanwhile).
func FaultCost(pages int) (time.Duration, bool) {
	size := pages * syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, false
	}
	defer syscall.Munmap(mem)
	// A kernel without transparent huge pages refuses the advice, and has
	// only small pages to give anyway.
	_ = syscall.Madvise(mem, syscall.MADV_NOHUGEPAGE)
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
	n := after.faults - before.faults
	if n < int64(pages) || n > int64(pages)+int64(pages)/10 {
		return 0, false
	}
	return took / time.Duration(n), true
}
