package rabbithole

import (
	"regexp"
	"strings"
	"testing"
)

// TestLinkDefinitionAsTheExpression: the written-out check says what the
// regular expression it replaced says, on every kind of line.
func TestLinkDefinitionAsTheExpression(t *testing.T) {
	re := regexp.MustCompile(`^\[[^\]]{1,999}\]:\s*\S`)
	lines := []string{
		"[a]: http://x", "[a]:http://x", "[a]:   ", "[a]:", "[]: x", "[a] : x", "[a]x: y",
		"a]: x", "[a: x", "[a]]: x", "[[a]: x", "[é]: x", "[\xff]: x", "[a]:\tx", "[a]: \x00",
		"[" + strings.Repeat("b", 999) + "]: x", "[" + strings.Repeat("b", 1000) + "]: x",
		"[" + strings.Repeat("é", 999) + "]: x", "[" + strings.Repeat("é", 1000) + "]: x",
		"", "[", "]", "[x]", "[x]:", "  [x]: y",
	}
	for _, l := range lines {
		if got, want := isLinkDefinition(l), re.MatchString(l); got != want {
			t.Errorf("%q: %v, the expression says %v", l, got, want)
		}
	}
}
