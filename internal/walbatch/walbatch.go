// Package walbatch registers a SQLite VFS that writes a transaction's
// write-ahead log frames to the file in one write instead of two per page.
//
// SQLite appends each page a transaction changed to the WAL as a frame: a
// 24-byte header, then the page, each its own pwrite. A chat turn changes
// about four pages and a group commit gathers a dozen turns, so a commit
// was about a hundred system calls, an eighth of the CPU of a reply in
// `grin bench chat`. This VFS is SQLite's own "unix" VFS with the methods
// of WAL files and main database files wrapped: the frames a connection
// appends to its WAL are gathered in memory and written together when the
// frame that commits the transaction arrives, before SQLite publishes the
// commit to other connections (the wal-index header) and before it
// returns from the commit. What SQLite was told is written is written
// when it believes it is: a commit stays durable against kill -9, and
// synchronous=NORMAL/FULL keep their meaning, since every sync is
// preceded by the write of what was gathered.
//
// When the gathered frames reach the file:
//   - at once after the page of a commit frame (a frame header whose
//     "database size after commit" field is not zero): the write's error,
//     if any, is the commit's;
//   - before anything else is asked of the WAL file (read, sync, size,
//     truncate, file control, close) and before a write that is not an
//     append (SQLite rewrites frames of the transaction in progress in
//     place, and rewrites checksums after the commit frame): SQLite sees
//     the file as if every write had been made at once;
//   - before the connection's database file publishes the wal-index
//     (xShmBarrier) or releases the WAL's write lock (xShmLock): no reader
//     can be told of a frame not yet written, and frames of a transaction
//     that was rolled back after spilling reach the file while their
//     connection still holds the write lock, beyond the log's end, where
//     recovery ignores them as it would have without this VFS;
//   - when more than maxGathered bytes are waiting (a large transaction
//     spilling pages).
//
// Only the connections that name the VFS in their DSN use it; they share
// SQLite's locks and inodes with every other connection of the process,
// since each file is opened by the "unix" VFS itself.
package walbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// Name is the VFS's name, for the vfs parameter of a DSN.
const Name = "grin-walbatch"

// maxGathered bounds the bytes gathered before they are written; a
// commit of grin's is far smaller (a group of turns writes tens of pages).
const maxGathered = 4 << 20

// maxWrite is the most the unix VFS writes in one call: its pwrite takes
// the low 17 bits of the length (unix's seekAndWriteFd), so a longer
// write is cut, and one of exactly 128 KiB writes nothing and reports the
// disk full.
const maxWrite = 1<<17 - 4096

// frameHeader is the size of a WAL frame's header; pages are at least 512
// bytes, so a write of this size is a frame header.
const frameHeader = 24

// walHeader is the size of the WAL file's own header, written at offset 0
// when the log starts over.
const walHeader = 32

// Register registers the VFS with SQLite, once; later calls return the
// first call's result.
func Register() error { return register() }

var register = sync.OnceValue(func() error {
	tls := libc.NewTLS()
	defer tls.Close()
	unix := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if unix == 0 {
		return errors.New("walbatch: SQLite has no default VFS")
	}
	t := &tables
	t.unix = unix
	t.vfs = *(*sqlite3.Tsqlite3_vfs)(ptr(unix))
	t.unixOpen = t.vfs.FxOpen
	t.vfs.FpNext = 0
	// The extension follows the unix VFS's file, 8-aligned.
	t.extAt = uintptr(t.vfs.FszOsFile+7) &^ 7
	t.vfs.FszOsFile = int32(t.extAt + unsafe.Sizeof(ext{}))
	name, err := libc.CString(Name)
	if err != nil {
		return fmt.Errorf("walbatch: %w", err)
	}
	t.vfs.FzName = name
	*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&t.vfs.FxOpen)) = xOpen
	if rc := sqlite3.Xsqlite3_vfs_register(tls, uintptr(unsafe.Pointer(&t.vfs)), 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("walbatch: register the VFS: %s", libc.GoString(sqlite3.Xsqlite3_errstr(tls, rc)))
	}
	return nil
})

// tables is what SQLite holds pointers into once the VFS is registered:
// the VFS and the method tables of the files it wraps. A registered VFS
// lives as long as the process, so these do too; register sets the VFS,
// the first file opened fills the method tables (under mu), and nothing
// changes them after.
var tables struct {
	vfs      sqlite3.Tsqlite3_vfs
	unix     uintptr // the unix VFS
	unixOpen uintptr // its xOpen
	extAt    uintptr // where ext starts in a file

	mu sync.Mutex
	// origMain and origWAL are the method tables the unix VFS gave the
	// first database and WAL file it opened; a file given another (some
	// other locking style) is left as the unix VFS made it.
	origMain uintptr
	origWAL  uintptr
	walIO    sqlite3.Tsqlite3_io_methods
	mainIO   sqlite3.Tsqlite3_io_methods
}

// ext is kept after the unix VFS's file struct, in memory SQLite
// allocates (outside Go's heap): plain numbers and addresses only. A
// file is used by one connection, one call at a time, so none of it is
// locked.
type ext struct {
	// peer is, for a WAL file, its connection's main database file, and
	// for a main database file, its WAL file while that is open.
	peer uintptr
	// For a WAL file: the gathered bytes, which belong at file offset off.
	buf      uintptr
	len, cap int64
	off      int64
	// end is the end of what has been appended to the log since it last
	// started over: a write below it rewrites a frame in place.
	end int64
	// commit: the last write was the header of a commit frame, so the
	// page that follows ends the transaction.
	commit bool
	// failed is the error of a write that could not be reported where it
	// happened; every later call on the WAL file returns it.
	failed int32
}

func extOf(f uintptr) *ext { return (*ext)(ptr(f + tables.extAt)) }

// ptr turns an address SQLite handed over into a pointer. The memory is
// SQLite's, allocated by modernc's libc outside Go's heap, so the
// collector neither moves nor frees it.
func ptr(a uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&a)) }

// walOrig and mainOrig are the unix VFS's method tables, which every
// wrapped file of their kind was opened with.
func walOrig() *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(ptr(tables.origWAL))
}

func mainOrig() *sqlite3.Tsqlite3_io_methods {
	return (*sqlite3.Tsqlite3_io_methods)(ptr(tables.origMain))
}

func xOpen(tls *libc.TLS, _ uintptr, zName uintptr, f uintptr, flags int32, outFlags uintptr) int32 {
	t := &tables
	*extOf(f) = ext{}
	// The unix VFS opens the file as it would for a connection of its
	// own, so its locks and inodes are shared with every other.
	rc := (*(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&t.unixOpen)))(tls, t.unix, zName, f, flags, outFlags)
	file := (*sqlite3.Tsqlite3_file)(ptr(f))
	if rc != sqlite3.SQLITE_OK || file.FpMethods == 0 || flags&(sqlite3.SQLITE_OPEN_WAL|sqlite3.SQLITE_OPEN_MAIN_DB) == 0 {
		return rc
	}
	if flags&sqlite3.SQLITE_OPEN_MAIN_DB != 0 {
		if fillMain(file.FpMethods) {
			file.FpMethods = uintptr(unsafe.Pointer(&t.mainIO))
		}
		return rc
	}
	if !fillWAL(file.FpMethods) {
		return rc
	}
	file.FpMethods = uintptr(unsafe.Pointer(&t.walIO))
	// Pair the WAL with its connection's database file, whose wal-index
	// calls must write what is gathered first.
	if db := sqlite3.Xsqlite3_database_file_object(tls, zName); db != 0 && (*sqlite3.Tsqlite3_file)(ptr(db)).FpMethods == uintptr(unsafe.Pointer(&t.mainIO)) {
		extOf(f).peer = db
		extOf(db).peer = f
	} else {
		// Without its database file's wal-index calls to write what is
		// gathered, the WAL is left as the unix VFS made it.
		file.FpMethods = t.origWAL
	}
	return rc
}

// fill sets *table from the methods m of the first file of its kind
// (*orig, which the unix VFS gives database files and WAL files apart:
// it locks a WAL file's inode not at all), overridden by wrap, and says
// whether a file opened with methods m can be wrapped.
func fill(orig *uintptr, table *sqlite3.Tsqlite3_io_methods, m uintptr, wrap func(*sqlite3.Tsqlite3_io_methods)) bool {
	tables.mu.Lock()
	defer tables.mu.Unlock()
	if *orig == 0 {
		*orig = m
		*table = *(*sqlite3.Tsqlite3_io_methods)(ptr(m))
		wrap(table)
	}
	return m == *orig
}

func fillMain(m uintptr) bool {
	return fill(&tables.origMain, &tables.mainIO, m, func(d *sqlite3.Tsqlite3_io_methods) {
		*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&d.FxClose)) = mainClose
		*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&d.FxShmLock)) = mainShmLock
		*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&d.FxShmBarrier)) = mainShmBarrier
		*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&d.FxShmUnmap)) = mainShmUnmap
	})
}

func fillWAL(m uintptr) bool {
	return fill(&tables.origWAL, &tables.walIO, m, func(w *sqlite3.Tsqlite3_io_methods) {
		*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&w.FxClose)) = walClose
		*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&w.FxRead)) = walRead
		*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&w.FxWrite)) = walWrite
		*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&w.FxTruncate)) = walTruncate
		*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&w.FxSync)) = walSync
		*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&w.FxFileSize)) = walFileSize
		*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&w.FxFileControl)) = walFileControl
	})
}

// flush writes what f has gathered.
func flush(tls *libc.TLS, f uintptr, e *ext) int32 {
	if e.failed != 0 {
		return e.failed
	}
	if e.len == 0 {
		return sqlite3.SQLITE_OK
	}
	for e.len > 0 {
		// The unix VFS writes at most 128 KiB less one byte a call.
		c := min(e.len, maxWrite)
		if rc := (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walOrig().FxWrite)))(tls, f, e.buf, int32(c), e.off); rc != sqlite3.SQLITE_OK {
			// What was not written stays gathered: SQLite was told it
			// was, so a later call writes it or fails as this one did.
			return rc
		}
		e.len -= c
		e.off += c
		if e.len > 0 {
			copy(unsafe.Slice((*byte)(ptr(e.buf)), e.len), unsafe.Slice((*byte)(ptr(e.buf+uintptr(c))), e.len))
		}
	}
	return sqlite3.SQLITE_OK
}

// gather appends n bytes at buf to what f has gathered.
func gather(tls *libc.TLS, e *ext, buf uintptr, n int64) int32 {
	if e.len+n > e.cap {
		c := max(e.cap*2, 64<<10)
		for c < e.len+n {
			c *= 2
		}
		p := sqlite3.Xsqlite3_realloc64(tls, e.buf, uint64(c))
		if p == 0 {
			return sqlite3.SQLITE_NOMEM
		}
		e.buf, e.cap = p, c
	}
	copy(unsafe.Slice((*byte)(ptr(e.buf+uintptr(e.len))), n), unsafe.Slice((*byte)(ptr(buf)), n))
	e.len += n
	return sqlite3.SQLITE_OK
}

func walWrite(tls *libc.TLS, f uintptr, buf uintptr, amt int32, off int64) int32 {
	e := extOf(f)
	if e.failed != 0 {
		return e.failed
	}
	n := int64(amt)
	if n == frameHeader {
		// Bytes 4-7 of a frame header: the database's size in pages
		// after a commit, zero for a frame that commits nothing. Every
		// write until the next header belongs to that frame (with
		// synchronous=FULL SQLite may cut its last frame in two around
		// a sync) and, in a commit frame, is written at once.
		hdr := unsafe.Slice((*byte)(ptr(buf)), frameHeader)
		e.commit = binary.BigEndian.Uint32(hdr[4:8]) != 0
	}
	inCommit := e.commit && n != frameHeader
	if off == 0 && n == walHeader {
		e.commit, inCommit = false, false
		// The log starts over: every offset is an append again.
		if rc := flush(tls, f, e); rc != sqlite3.SQLITE_OK {
			return rc
		}
		e.end = 0
	}
	appends := off >= e.end && (e.len == 0 || off == e.off+e.len) && e.len+n <= maxGathered
	if !appends {
		if rc := flush(tls, f, e); rc != sqlite3.SQLITE_OK {
			return rc
		}
		if off < e.end {
			// A frame rewritten in place: straight to the file, as
			// without this VFS. (A write is at most a page, 64 KiB, so
			// one never exceeds maxGathered alone.)
			e.end = max(e.end, off+n)
			return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walOrig().FxWrite)))(tls, f, buf, amt, off)
		}
	}
	if e.len == 0 {
		e.off = off
	}
	if rc := gather(tls, e, buf, n); rc != sqlite3.SQLITE_OK {
		return rc
	}
	e.end = off + n
	if inCommit {
		// The transaction's last frame: it is written before SQLite
		// goes on to publish the commit, and its error is the commit's.
		return flush(tls, f, e)
	}
	return sqlite3.SQLITE_OK
}

func walRead(tls *libc.TLS, f uintptr, buf uintptr, amt int32, off int64) int32 {
	if rc := flush(tls, f, extOf(f)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&walOrig().FxRead)))(tls, f, buf, amt, off)
}

func walTruncate(tls *libc.TLS, f uintptr, size int64) int32 {
	e := extOf(f)
	if rc := flush(tls, f, e); rc != sqlite3.SQLITE_OK {
		return rc
	}
	e.end = min(e.end, size)
	return (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&walOrig().FxTruncate)))(tls, f, size)
}

func walSync(tls *libc.TLS, f uintptr, flags int32) int32 {
	if rc := flush(tls, f, extOf(f)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&walOrig().FxSync)))(tls, f, flags)
}

func walFileSize(tls *libc.TLS, f uintptr, size uintptr) int32 {
	if rc := flush(tls, f, extOf(f)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&walOrig().FxFileSize)))(tls, f, size)
}

func walFileControl(tls *libc.TLS, f uintptr, op int32, arg uintptr) int32 {
	if rc := flush(tls, f, extOf(f)); rc != sqlite3.SQLITE_OK {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&walOrig().FxFileControl)))(tls, f, op, arg)
}

func walClose(tls *libc.TLS, f uintptr) int32 {
	e := extOf(f)
	rc := flush(tls, f, e)
	if e.buf != 0 {
		sqlite3.Xsqlite3_free(tls, e.buf)
		e.buf, e.cap = 0, 0
	}
	if e.peer != 0 {
		extOf(e.peer).peer = 0
		e.peer = 0
	}
	if crc := (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&walOrig().FxClose)))(tls, f); rc == sqlite3.SQLITE_OK {
		rc = crc
	}
	return rc
}

// flushPeer writes what the WAL of main database file f has gathered;
// an error is kept for the WAL's next call, since the wal-index calls
// that ask for it cannot all report one.
func flushPeer(tls *libc.TLS, f uintptr) int32 {
	w := extOf(f).peer
	if w == 0 {
		return sqlite3.SQLITE_OK
	}
	e := extOf(w)
	rc := flush(tls, w, e)
	if rc != sqlite3.SQLITE_OK && e.failed == 0 {
		e.failed = rc
	}
	return rc
}

func mainShmBarrier(tls *libc.TLS, f uintptr) {
	flushPeer(tls, f)
	(*(*func(*libc.TLS, uintptr))(unsafe.Pointer(&mainOrig().FxShmBarrier)))(tls, f)
}

func mainShmLock(tls *libc.TLS, f uintptr, offset, n, flags int32) int32 {
	// The WAL's write lock is slot 0.
	writeLock := offset == 0 && flags&sqlite3.SQLITE_SHM_EXCLUSIVE != 0
	if w := extOf(f).peer; w != 0 && writeLock && flags&sqlite3.SQLITE_SHM_UNLOCK != 0 {
		// The write lock is released: whatever is still gathered was
		// never committed (a commit's frames are written with its last
		// one, or the commit failed and was rolled back). It goes to
		// the file beyond the log's end while the lock is held, where
		// recovery ignores it; if it cannot, it is dropped, and the
		// connection is not left failing for it.
		e := extOf(w)
		if flush(tls, w, e) != sqlite3.SQLITE_OK {
			e.len = 0
		}
		e.commit = false
	} else {
		flushPeer(tls, f)
	}
	rc := (*(*func(*libc.TLS, uintptr, int32, int32, int32) int32)(unsafe.Pointer(&mainOrig().FxShmLock)))(tls, f, offset, n, flags)
	if w := extOf(f).peer; w != 0 && rc == sqlite3.SQLITE_OK && writeLock && flags&sqlite3.SQLITE_SHM_LOCK != 0 {
		// A write transaction begins: only its own frames can be
		// rewritten in place, so every offset is an append until it
		// writes some (after another connection's transactions or a
		// rollback, an older end would keep appends from being
		// gathered).
		if e := extOf(w); e.len == 0 {
			e.end = 0
		}
	}
	return rc
}

func mainShmUnmap(tls *libc.TLS, f uintptr, deleteFlag int32) int32 {
	flushPeer(tls, f)
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&mainOrig().FxShmUnmap)))(tls, f, deleteFlag)
}

func mainClose(tls *libc.TLS, f uintptr) int32 {
	rc := flushPeer(tls, f)
	if w := extOf(f).peer; w != 0 {
		extOf(w).peer = 0
		extOf(f).peer = 0
	}
	if crc := (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&mainOrig().FxClose)))(tls, f); rc == sqlite3.SQLITE_OK {
		rc = crc
	}
	return rc
}
