package users

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestEqualizerHashCostsAsMuchAsAPassword: the hash an unknown username
// is compared against is a real bcrypt hash at the cost passwords are
// stored with, so refusing an unknown user takes as long as refusing a
// wrong password.
func TestEqualizerHashCostsAsMuchAsAPassword(t *testing.T) {
	cost, err := bcrypt.Cost([]byte(equalizerHash))
	if err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("equalizer hash cost %d (%v), want %d", cost, err, bcrypt.DefaultCost)
	}
	if bcrypt.CompareHashAndPassword([]byte(equalizerHash), []byte("grin-timing-equalizer")) != nil {
		t.Error("the equalizer hash is not a whole bcrypt hash")
	}
	s, err := New(nil, nil, WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := bcrypt.Cost(s.dummyHash); c != bcrypt.MinCost {
		t.Errorf("with cost %d configured the equalizer hash costs %d", bcrypt.MinCost, c)
	}
}
