//go:build !wasip1

package pdk

// Outside WebAssembly the kit runs hooks in process, so authors can unit
// test them with go test: see Invoke.

var logs []string

func hostLog(level int, s string) { logs = append(logs, s) }

// hostCtxRead is never reached: Invoke's envelope fills every field.
func hostCtxRead(int) string { return "" }

// Invoke runs a registered hook as the host would, for tests of a plugin
// outside WebAssembly: input is ABI v1's envelope ({"ctx":{"user_id",
// "username", "plugin_id", "request_id"}, "settings":{…}, "payload":…});
// it returns the status (0 output, 1 error, 2 unchanged), the output and
// the error message.
func Invoke(hook string, input []byte) (status uint32, output []byte, errMsg string) {
	output, status, errMsg = runEnvelope(hook, input)
	return status, output, errMsg
}
