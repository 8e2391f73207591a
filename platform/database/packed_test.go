package database_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/klauspost/compress/zstd"
)

// TestPack: large JSON is stored compressed and comes back byte for byte;
// small JSON, and JSON stored before packing existed, read as they are; a
// damaged packed value is an error, never wrong text.
func TestPack(t *testing.T) {
	// A why as a chat turn writes it: the prompt repeats the memories.
	var b strings.Builder
	b.WriteString(`{"input":"what about the white rabbit?","model_interactions":[{"model_type":"llm","prompt":"`)
	for i := range 40 {
		fmt.Fprintf(&b, "- user %d says message %d about the white rabbit\\n", i%3, i)
	}
	b.WriteString(`"}]}`)
	large := []byte(b.String())
	small := []byte(`{"input":"hi","memory":{"episodic":[]}}`)

	for _, tc := range []struct {
		name   string
		in     []byte
		packed bool // stored compressed, and smaller
	}{
		{"a large why", large, true},
		{"a small why", small, false},
		{"just under the threshold", bytes.Repeat([]byte("a"), database.PackAtLeast-1), false},
		{"at the threshold", bytes.Repeat([]byte("a"), database.PackAtLeast), true},
		{"nothing", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stored := database.Pack(tc.in)
			z, isBytes := stored.([]byte)
			if isBytes != tc.packed {
				t.Fatalf("stored as %T, packed %v; want packed %v", stored, isBytes, tc.packed)
			}
			if tc.packed && len(z) >= len(tc.in) {
				t.Errorf("packed %d bytes into %d", len(tc.in), len(z))
			}
			if tc.in == nil && stored != nil {
				t.Errorf("nil stored as %v, want NULL", stored)
			}
			got, err := database.Unpack(stored)
			if err != nil || !bytes.Equal(got, tc.in) {
				t.Errorf("unpacked %.60q, %v; want %.60q", got, err, tc.in)
			}
		})
	}
	if z := database.Pack(large).([]byte); len(z)*3 > len(large) {
		t.Errorf("a why's %d bytes packed into %d: less than a third saved", len(large), len(z))
	}

	// Read as a column holds them: text (rows from before packing, or
	// PostgreSQL's), a BLOB that is not packed.
	for _, v := range []any{string(large), large} {
		if got, err := database.Unpack(v); err != nil || !bytes.Equal(got, large) {
			t.Errorf("a %T read as it is: %.40q, %v", v, got, err)
		}
	}
	// Rows packed before S2, as zstd frames, still read.
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := database.Unpack(zenc.EncodeAll(large, nil)); err != nil || !bytes.Equal(got, large) {
		t.Errorf("a value packed with zstd: %.40q, %v", got, err)
	}

	packed := database.Pack(large).([]byte)
	for _, tc := range []struct {
		name    string
		damaged []byte
	}{
		{"cut short", append(bytes.Clone(packed[:len(packed)/2]), 0xff, 0xfe)},
		{"a byte changed", func() []byte { b := bytes.Clone(packed); b[len(b)/2] ^= 0x20; return b }()},
		{"its checksum changed", func() []byte { b := bytes.Clone(packed); b[5] ^= 1; return b }()},
		{"a zstd frame cut short", zenc.EncodeAll(large, nil)[:40]},
	} {
		if got, err := database.Unpack(tc.damaged); !errors.Is(err, database.ErrDamaged) {
			t.Errorf("a damaged value (%s): %.40q, %v; want ErrDamaged", tc.name, got, err)
		}
	}
	if _, err := database.Unpack(42); err == nil {
		t.Error("a number where text was expected: no error")
	}
}
