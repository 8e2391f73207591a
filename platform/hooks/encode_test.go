package hooks

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// strs exercise every escaping rule of encoding/json: plain text, quotes
// and backslashes, control characters, HTML's characters, text beyond
// ASCII, invalid UTF-8 and U+2028/U+2029.
var strs = []string{
	"", "hello", `say "hi" \ back`, "line\nbreak\ttab\r\b\f", "\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "ünïcödé ✓ 猫", "bad \xff\xfe utf-8", "cut \xe2\x80", "sep\u2028par\u2029",
	strings.Repeat("a long prompt line\n", 50),
}

// floats64 and floats32 cover both forms encoding/json writes, and their
// edges.
var (
	floats64 = []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1796104224.8872218, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e300, -2.5e-300, 1.0000000000000002, math.SmallestNonzeroFloat64, math.MaxFloat64}
	floats32 = []float32{0, float32(math.Copysign(0, -1)), 1, -0.4472136, 0.4472136, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 3e38, -1e-30, math.SmallestNonzeroFloat32, 0.1, 123456.79}
)

func randomReply(rng *rand.Rand) Reply {
	s := func() string { return strs[rng.IntN(len(strs))] }
	f := func() float64 { return floats64[rng.IntN(len(floats64))] }
	vec := func() []float32 {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []float32{}
		}
		v := make([]float32, rng.IntN(600))
		for i := range v {
			if rng.IntN(3) == 0 {
				v[i] = floats32[rng.IntN(len(floats32))]
			}
		}
		return v
	}
	docs := func() []Document {
		if rng.IntN(5) == 0 {
			return nil
		}
		d := make([]Document, rng.IntN(4))
		for i := range d {
			d[i] = Document{ID: s(), PageContent: s(), Score: f(), Metadata: map[string]any{"source": s(), "when": f(), "n": rng.IntN(10), "ok": rng.IntN(2) == 0, "none": nil}}
			switch rng.IntN(4) {
			case 0:
				d[i].Metadata = nil
			case 1:
				d[i].Metadata[s()] = []any{s(), true, nil, f()} // a kind written by encoding/json
			}
		}
		return d
	}
	steps := func() []any {
		switch rng.IntN(3) {
		case 0:
			return nil
		case 1:
			return []any{}
		}
		return []any{s(), map[string]any{"tool": s(), "output": f()}, []any{1, s()}}
	}
	var mis []ModelInteraction
	if rng.IntN(6) > 0 {
		mis = []ModelInteraction{}
		for range rng.IntN(4) {
			mi := ModelInteraction{ModelType: s(), Source: s(), Prompt: s(), InputTokens: rng.IntN(1000) - 5, OutputTokens: rng.IntN(100), StartedAt: f(), EndedAt: f()}
			switch rng.IntN(5) {
			case 0:
				mi.Reply = s()
			case 1, 2:
				mi.Reply = vec()
			case 3:
				mi.Reply = nil
			case 4:
				mi.Reply = map[string]any{"text": s(), "list": []float64{f()}}
			}
			mis = append(mis, mi)
		}
	}
	return Reply{Type: s(), Who: s(), UserID: s(), Text: s(), Content: s(), Message: s(), When: f(),
		Why: Why{Input: s(), IntermediateSteps: steps(),
			Memory:            MemoryWhy{Episodic: docs(), Declarative: docs(), Procedural: docs()},
			ModelInteractions: mis,
			AgentOutput:       AgentOutput{Output: s(), ReturnDirect: rng.IntN(2) == 0, IntermediateSteps: steps()}}}
}

// TestAppendJSONIsMarshal: the chat frame's own encoder writes what
// json.Marshal writes, byte for byte, for frames of every shape, and
// fails where it fails (a number JSON cannot hold).
func TestAppendJSONIsMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 3000 {
		r := randomReply(rng)
		want, werr := json.Marshal(r)
		got, gerr := r.AppendJSON(nil)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("frame %d:\nAppendJSON   %s (%v)\njson.Marshal %s (%v)", i, got, gerr, want, werr)
		}
		wantWhy, _ := json.Marshal(r.Why)
		if gotWhy, _ := r.Why.AppendJSON([]byte("prefix")); werr == nil && !bytes.Equal(gotWhy, append([]byte("prefix"), wantWhy...)) {
			t.Fatalf("why %d:\nAppendJSON   %s\njson.Marshal %s", i, gotWhy, wantWhy)
		}
	}
	for _, bad := range []Reply{
		{When: math.NaN()},
		{When: math.Inf(1)},
		{Why: Why{ModelInteractions: []ModelInteraction{{Reply: []float32{1, float32(math.Inf(-1))}}}}},
		{Why: Why{ModelInteractions: []ModelInteraction{{StartedAt: math.NaN()}}}},
		{Why: Why{Memory: MemoryWhy{Episodic: []Document{{Score: math.NaN()}}}}},
		{Why: Why{Memory: MemoryWhy{Episodic: []Document{{Metadata: map[string]any{"when": math.Inf(-1)}}}}}},
	} {
		if _, err := json.Marshal(bad); err == nil {
			t.Fatalf("json.Marshal took %+v", bad)
		}
		if b, err := bad.AppendJSON(nil); err == nil {
			t.Errorf("AppendJSON wrote %s for a number JSON cannot hold", b)
		}
	}
}

// FuzzAppendJSON: any text and any numbers are written as json.Marshal
// writes them.
func FuzzAppendJSON(f *testing.F) {
	for i, s := range strs {
		f.Add(s, floats64[i%len(floats64)], floats32[i%len(floats32)])
	}
	f.Fuzz(func(t *testing.T, s string, x float64, y float32) {
		r := Reply{Type: "chat", Text: s, When: x, Why: Why{Input: s,
			Memory:            MemoryWhy{Episodic: []Document{{PageContent: s, Score: x, Metadata: map[string]any{s: s, "x": x}}}},
			ModelInteractions: []ModelInteraction{{Prompt: s, Reply: []float32{y, 0, -y}, StartedAt: x}, {Reply: s}}}}
		want, werr := json.Marshal(r)
		got, gerr := r.AppendJSON(nil)
		if (werr != nil) != (gerr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON   %s (%v)\njson.Marshal %s (%v)", got, gerr, want, werr)
		}
	})
}

// BenchmarkChatFrame encodes the chat frame of a user's fortieth message
// (a prompt of 20 turns, the offline embedder's 512 numbers): with
// AppendJSON, and with json.Marshal, the anchor.
func BenchmarkChatFrame(b *testing.B) {
	vec := make([]float32, 512)
	for _, i := range []int{21, 256, 300, 310, 470} {
		vec[i] = 0.4472136
	}
	prompt := strings.Repeat("Human: user 7 says message 3 about the white rabbit\nAI: Here is what I remember that seems related:\n- user 7 says message 1 about the white rabbit\n(No language model is configured.)\n", 20)
	docs := []Document{{ID: "0cbf77e6-38f8-4113-930f-1840568f2eaa", PageContent: "user 7 says message 3 about the white rabbit", Metadata: map[string]any{"source": "load-00007", "when": 1796104218.3428931}, Score: 0.8}}
	r := Reply{Type: "chat", Who: "AI", UserID: "load-00007", Text: "Here is what I remember", Content: "Here is what I remember", Message: "Here is what I remember", When: 1796104224.8872218,
		Why: Why{Input: "user 7 says message 3", IntermediateSteps: []any{},
			Memory: MemoryWhy{Episodic: docs, Declarative: []Document{}, Procedural: []Document{}},
			ModelInteractions: []ModelInteraction{
				{ModelType: "embedder", Source: "recall", Prompt: "user 7 says message 3", Reply: vec, InputTokens: 10, StartedAt: 1796104224.8871768, EndedAt: 1796104224.88718},
				{ModelType: "llm", Source: "agent", Prompt: prompt, Reply: "Here is what I remember", InputTokens: 481, OutputTokens: 67, StartedAt: 1796104224.8872097, EndedAt: 1796104224.88722},
			},
			AgentOutput: AgentOutput{Output: "Here is what I remember", IntermediateSteps: []any{}}}}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
