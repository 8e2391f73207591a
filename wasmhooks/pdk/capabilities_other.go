//go:build !wasip1

package pdk

// HostCalls answers host calls outside WebAssembly, for unit tests of a
// plugin: set it to return the JSON answer ({"ok": …} or {"error": …}) to
// each call. When nil, every call answers "unavailable".
var HostCalls func(name string, req []byte) []byte

func hostCall(name string, req []byte) []byte {
	if HostCalls == nil {
		return []byte(`{"error":{"code":"unavailable","message":"host calls need grin (or pdk.HostCalls in tests)"}}`)
	}
	return HostCalls(name, req)
}
