//go:build !wasip1

package pdk

// Outside WebAssembly the kit runs hooks in process, so authors can unit
// test them with go test: see Invoke.

var (
	lastOutput []byte
	lastError  string
	lastInput  []byte
	logs       []string
)

func hostInputRead(buf []byte)    { copy(buf, lastInput) }
func hostOutputWrite(b []byte)    { lastOutput = append([]byte(nil), b...) }
func hostErrorWrite(s string)     { lastError = s }
func hostLog(level int, s string) { logs = append(logs, s) }

// Invoke runs a registered hook as the host would, for tests of a plugin
// outside WebAssembly: input is the ABI's JSON; it returns the status
// (0 output, 1 error, 2 unchanged), the output and the error message.
func Invoke(hook string, input []byte) (status uint32, output []byte, errMsg string) {
	lastInput, lastOutput, lastError = input, nil, ""
	status = run(hook, uint32(len(input)))
	return status, lastOutput, lastError
}
