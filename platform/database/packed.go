package database

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Packed values. The conversation history keeps each reply's why, which
// holds the whole prompt the model was given: kilobytes of JSON per turn,
// more than half of what a chat turn writes. SQLite stores a value as it
// is given, where PostgreSQL compresses large ones itself (TOAST); so on
// SQLite grin stores such JSON compressed, about a quarter of its size, as
// a BLOB in the same column. The compression runs in the turn's own
// goroutine, before its write joins the single writer's queue.
//
// Pack writes S2 (klauspost/compress/s2, an extension of Snappy) behind a
// header of its own: packMagic, then the CRC-32C of the text, which S2's
// block format does not carry, so that a damaged value is an error and
// never wrong text. Rows written before this format are zstd frames
// (zstd's magic number) and are still read. No JSON text begins with
// either header (0xff and 0x28 0xb5 are not how JSON starts), so Unpack
// tells packed values from plain ones, and rows written before packing
// existed read as they were.

// PackAtLeast is the size from which Pack compresses: smaller values stay
// as they are (text a person can read with the sqlite3 shell).
const PackAtLeast = 512

// MaxUnpacked bounds what Unpack will expand a value to.
const MaxUnpacked = 64 << 20

var (
	packMagic  = []byte{0xff, 's', '2', 0}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// packHeader is packMagic and the text's CRC-32C.
const packHeader = 8

// The zstd decoder reads rows packed before S2; it is safe for concurrent
// use and made on first use: a database without such rows pays nothing.
var unpacker = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxUnpacked))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder: %v", err)) // only for invalid options
	}
	return d
})

// Pack returns the value to store for b in a column Unpack reads: b
// compressed ([]byte, a BLOB) when it is at least PackAtLeast bytes and
// compressing makes it smaller, otherwise b as text (string). nil stays
// nil (NULL).
func Pack(b []byte) any {
	if b == nil {
		return nil
	}
	if len(b) >= PackAtLeast {
		// S2 wants room for the worst case; the value stored is copied
		// out of it, so that what stays on the heap until the write is
		// its size, not the input's.
		scratch := packScratch.Get().(*[]byte)
		defer packScratch.Put(scratch)
		if need := packHeader + s2.MaxEncodedLen(len(b)); cap(*scratch) < need {
			*scratch = make([]byte, need)
		}
		z := (*scratch)[:cap(*scratch)]
		copy(z, packMagic)
		binary.LittleEndian.PutUint32(z[len(packMagic):], crc32.Checksum(b, castagnoli))
		z = z[:packHeader+len(s2.Encode(z[packHeader:], b))]
		if len(z) < len(b) {
			return bytes.Clone(z)
		}
	}
	return string(b)
}

// packScratch holds Pack's buffers for the worst case.
var packScratch = sync.Pool{New: func() any { return new([]byte) }}

// ErrDamaged is returned by Unpack for a packed value that does not
// decompress.
var ErrDamaged = errors.New("a stored value is damaged")

// Unpack returns the value Pack was given, from what a column holds: text
// as it is, a packed BLOB decompressed. A BLOB that is not packed is
// returned as it is.
func Unpack(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []byte:
		switch {
		case bytes.HasPrefix(x, packMagic) && len(x) >= packHeader:
			z := x[packHeader:]
			if n, err := s2.DecodedLen(z); err != nil || n > MaxUnpacked {
				return nil, fmt.Errorf("%w: its length is unreadable or over %d bytes", ErrDamaged, MaxUnpacked)
			}
			b, err := s2.Decode(nil, z)
			if err != nil {
				return nil, fmt.Errorf("%w: it does not decompress: %v", ErrDamaged, err)
			}
			if crc32.Checksum(b, castagnoli) != binary.LittleEndian.Uint32(x[len(packMagic):]) {
				return nil, fmt.Errorf("%w: its checksum differs", ErrDamaged)
			}
			return b, nil
		case bytes.HasPrefix(x, zstdMagic):
			b, err := unpacker().DecodeAll(x, nil)
			if err != nil {
				return nil, fmt.Errorf("%w: it does not decompress: %v", ErrDamaged, err)
			}
			return b, nil
		}
		return bytes.Clone(x), nil
	}
	return nil, fmt.Errorf("a stored value of type %T where text or bytes were expected", v)
}
