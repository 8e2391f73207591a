package database

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Packed values. The conversation history keeps each reply's why, which
// holds the whole prompt the model was given: kilobytes of JSON per turn,
// more than half of what a chat turn writes. SQLite stores a value as it
// is given, where PostgreSQL compresses large ones itself (TOAST); so on
// SQLite grin stores such JSON zstd-compressed, a quarter of its size, as
// a BLOB in the same column. The compression runs in the turn's own
// goroutine, before its write joins the single writer's queue.
//
// Pack's output begins with zstd's magic number, which no JSON text does,
// so Unpack tells a packed value from a plain one, and rows written
// before packing existed read as they were.

// PackAtLeast is the size from which Pack compresses: smaller values stay
// as they are (text a person can read with the sqlite3 shell).
const PackAtLeast = 512

// MaxUnpacked bounds what Unpack will expand a value to.
const MaxUnpacked = 64 << 20

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// The coder and decoder are safe for concurrent use and made on first use:
// a start that packs nothing pays nothing for them.
var (
	packer = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder: %v", err)) // only for invalid options
		}
		return e
	})
	unpacker = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxUnpacked))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder: %v", err)) // only for invalid options
		}
		return d
	})
)

// Pack returns the value to store for b in a column Unpack reads: b
// compressed ([]byte, a BLOB) when it is at least PackAtLeast bytes and
// compressing makes it smaller, otherwise b as text (string). nil stays
// nil (NULL).
func Pack(b []byte) any {
	if b == nil {
		return nil
	}
	if len(b) >= PackAtLeast {
		if z := packer().EncodeAll(b, make([]byte, 0, len(b)/2)); len(z) < len(b) {
			return z
		}
	}
	return string(b)
}

// ErrDamaged is returned by Unpack for a packed value that does not
// decompress.
var ErrDamaged = errors.New("a stored value is damaged: it does not decompress")

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
		if !bytes.HasPrefix(x, zstdMagic) {
			return bytes.Clone(x), nil
		}
		b, err := unpacker().DecodeAll(x, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("a stored value of type %T where text or bytes were expected", v)
}
