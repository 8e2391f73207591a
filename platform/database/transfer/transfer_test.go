package transfer

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
)

// TestTablesListEverySchemaTable: every table of grin's schema, as this
// grin's migrations make it, is named in Tables, copied or left behind
// with a reason, and Tables names no table the schema lacks. A migration
// that adds a table fails here until someone decides its fate.
func TestTablesListEverySchemaTable(t *testing.T) {
	db, err := database.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	names, err := queryStrings(context.Background(), db, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	fates := Tables()
	for _, n := range names {
		fate, ok := fates[n]
		switch {
		case !ok:
			t.Errorf("table %s is in the schema and not in transfer.Tables: say whether grin db migrate copies it", n)
		case !fate.Copy && fate.Why == "":
			t.Errorf("table %s is left behind without a reason for the operator", n)
		case fate.Copy && fate.Why != "":
			t.Errorf("table %s is copied and has a reason to be left behind", n)
		}
		delete(fates, n)
	}
	var stale []string
	for n := range fates {
		stale = append(stale, n)
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("transfer.Tables names tables the schema does not have: %s", strings.Join(stale, ", "))
	}
}

// TestConvert: a value SQLite holds is written as PostgreSQL's column
// stores it, and one that does not fit is refused in words, never
// changed silently.
func TestConvert(t *testing.T) {
	for _, c := range []struct {
		kind kind
		in   any
		want any
		err  string
	}{
		{kindInt, int64(42), int64(42), ""},
		{kindInt, 3.0, int64(3), ""},
		{kindInt, 3.5, nil, "not a whole number"},
		{kindInt, "12", int64(12), ""},
		{kindInt, "twelve", nil, `the text "twelve" is not a whole number`},
		{kindInt, int32(7), int64(7), ""},
		{kindFloat, int64(2), 2.0, ""},
		{kindFloat, 1.75, 1.75, ""},
		{kindText, "héllo", "héllo", ""},
		{kindText, []byte("bytes"), "bytes", ""},
		{kindText, int64(5), "5", ""},
		{kindText, "a\x00b", nil, "NUL byte"},
		{kindText, "\xff\xfe", nil, "not valid UTF-8"},
		{kindBytes, []byte{0, 1, 2}, []byte{0, 1, 2}, ""},
		{kindBytes, "text", []byte("text"), ""},
		{kindBytes, int64(1), nil, "cannot be stored"},
		{kindBool, int64(1), true, ""},
		{kindBool, int64(2), nil, "neither 0 nor 1"},
		{kindText, nil, nil, ""},
	} {
		got, err := convert(c.kind, c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("convert(%d, %#v) = %#v, %v; want an error saying %q", c.kind, c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !equal(got, c.want) {
			t.Errorf("convert(%d, %#v) = %#v, %v; want %#v", c.kind, c.in, got, err, c.want)
		}
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	}
	return a == b
}

// TestKeysRoundTrip: the position recorded in the progress table reads
// back as the values it was made of, types included, so a resumed copy
// starts after the right row.
func TestKeysRoundTrip(t *testing.T) {
	in := []any{int64(1) << 60, "alice\x00", []byte{0xff, 0}, 2.5, nil}
	s, err := encodeKey(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeKey(s)
	if err != nil || len(out) != len(in) {
		t.Fatalf("decodeKey(%s) = %#v, %v", s, out, err)
	}
	for i := range in {
		if !equal(out[i], in[i]) {
			t.Errorf("value %d: %#v, want %#v", i, out[i], in[i])
		}
	}
}
