package main

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// newProgressBar is the progress bar grin's commands draw on stderr: total
// units, a label, redrawn at most ten times a second and cleared when done.
// opts say what the units are (progressbar.OptionShowBytes,
// progressbar.OptionShowCount...).
func newProgressBar(w io.Writer, label string, total int64, opts ...progressbar.Option) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total, append([]progressbar.Option{
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(label),
		progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100 * time.Millisecond),
	}, opts...)...)
}
