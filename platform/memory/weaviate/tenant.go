package weaviate

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// MaxTenantName is Weaviate's limit on a tenant name.
const MaxTenantName = 64

// TenantName maps an identity id (any string) to a Weaviate tenant name
// ([A-Za-z0-9_-]{1,64}), injectively: two ids never share a tenant.
//
// Short ids stay readable: "u" followed by the id, where every byte other
// than a letter, a digit or "_" is written "-XX" (hex), so "-" always opens
// an escape and the name decodes back to the id. An id whose escaped form
// does not fit is named "h" followed by the base64url SHA-256 of the id;
// the first letter keeps the two forms apart.
func TenantName(id string) string {
	var b strings.Builder
	b.WriteByte('u')
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "-%02X", c)
		}
		if b.Len() > MaxTenantName {
			break
		}
	}
	if b.Len() <= MaxTenantName {
		return b.String()
	}
	sum := sha256.Sum256([]byte(id))
	return "h" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// PartitionOf reverses TenantName for readable names; hashed names
// (ids too long to spell out) report false.
func PartitionOf(tenant string) (string, bool) {
	if !strings.HasPrefix(tenant, "u") {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(tenant); i++ {
		c := tenant[i]
		if c != '-' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tenant) {
			return "", false
		}
		n, err := strconv.ParseUint(tenant[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), true
}
