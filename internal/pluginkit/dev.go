package pluginkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DevConfig configures Dev.
type DevConfig struct {
	Dir string
	// Server is the base URL of a running grin.
	Server string
	// Token is sent as a bearer token (an administrator's JWT or the API
	// key); empty for a grin with authentication off.
	Token string
	// Sandbox checks each build before it is uploaded.
	Sandbox *Sandbox
	// Out gets what happens (builds, uploads, the plugin's logs).
	Out io.Writer
	// Client makes the requests (http.DefaultClient when nil).
	Client *http.Client
	// Settle is how long the folder must be quiet before a rebuild
	// (default 300ms): an editor's save is often several writes.
	Settle time.Duration
	// LogEvery is how often the plugin's logs are polled (default 1s).
	LogEvery time.Duration
}

// Dev keeps a running grin in step with a plugin folder until ctx ends:
// it builds, checks and uploads the plugin now and after every change to
// the folder, and prints the plugin's log lines when the server offers
// them at GET /plugins/logs/{id}. A failed build or upload is printed and
// the loop goes on with the next change.
func Dev(ctx context.Context, c DevConfig) error {
	if c.Client == nil {
		c.Client = http.DefaultClient
	}
	if c.Settle <= 0 {
		c.Settle = 300 * time.Millisecond
	}
	if c.LogEvery <= 0 {
		c.LogEvery = time.Second
	}
	c.Server = strings.TrimRight(c.Server, "/")
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", c.Dir, err)
	}
	defer w.Close()
	if err := watchTree(w, c.Dir); err != nil {
		return err
	}
	id := ""
	logs := &logPoller{c: c}
	round := func() {
		if got := c.push(ctx); got != "" {
			id = got
		}
	}
	round()
	var settle <-chan time.Time
	poll := time.NewTicker(c.LogEvery)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ignored(c.Dir, ev.Name) {
				continue
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					watchTree(w, ev.Name)
				}
			}
			settle = time.After(c.Settle)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			fmt.Fprintf(c.Out, "watching: %v\n", err)
		case <-settle:
			settle = nil
			fmt.Fprintln(c.Out, "changed; rebuilding")
			round()
		case <-poll.C:
			if id != "" {
				logs.poll(ctx, id)
			}
		}
	}
}

// push builds, checks and uploads; it returns the plugin's id when the
// server took it.
func (c DevConfig) push(ctx context.Context) string {
	b, err := Build(ctx, c.Dir, c.Out)
	if err != nil {
		fmt.Fprintf(c.Out, "build failed: %v\n", err)
		return ""
	}
	l, err := c.Sandbox.Load(ctx, b.Manifest, b.Wasm)
	if err != nil {
		fmt.Fprintf(c.Out, "not uploaded: %v\n", err)
		return ""
	}
	defer l.Close(ctx)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", l.Manifest.ID+".zip")
	part.Write(l.Archive)
	mw.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Server+"/plugins/upload", &body)
	if err != nil {
		fmt.Fprintf(c.Out, "upload: %v\n", err)
		return ""
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		fmt.Fprintf(c.Out, "upload: %v\n", err)
		return ""
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(c.Out, "upload refused: %s: %s\n", resp.Status, problem(answer))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			fmt.Fprintln(c.Out, "installing plugins takes an administrator: pass --token or set GRIN_TOKEN (a JWT from POST /auth/token, or the API key)")
		}
		return ""
	}
	fmt.Fprintf(c.Out, "uploaded %s %s to %s (%d KiB)\n", l.Manifest.ID, l.Manifest.Version, c.Server, len(l.Archive)>>10)
	return l.Manifest.ID
}

// problem is a problem+json answer's detail, or the answer as it is.
func problem(b []byte) string {
	var p struct {
		Detail string `json:"detail"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &p) == nil && p.Detail != "" {
		for _, e := range p.Errors {
			p.Detail += "; " + e.Message
		}
		return p.Detail
	}
	return strings.TrimSpace(string(b))
}

// logPoller prints the log lines the server keeps for the plugin, each
// once. A server without the endpoint is said once.
type logPoller struct {
	c       DevConfig
	absent  bool
	printed map[string]bool
}

func (p *logPoller) poll(ctx context.Context, id string) {
	if p.absent {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.c.Server+"/plugins/logs/"+id, nil)
	if err != nil {
		return
	}
	if p.c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.c.Token)
	}
	resp, err := p.c.Client.Do(req)
	if err != nil {
		return // the server may be restarting; try again next time
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		p.absent = true
		fmt.Fprintf(p.c.Out, "this server does not offer plugin logs (GET /plugins/logs/%s answered %s): the plugin's lines are in the server's own log\n", id, resp.Status)
		return
	case resp.StatusCode != http.StatusOK:
		p.absent = true
		fmt.Fprintf(p.c.Out, "plugin logs: %s: %s; not asking again\n", resp.Status, problem(body))
		return
	}
	if p.printed == nil {
		p.printed = map[string]bool{}
	}
	for _, line := range logEntries(body) {
		if !p.printed[line] {
			p.printed[line] = true
			fmt.Fprintf(p.c.Out, "log: %s\n", line)
		}
	}
}

// logEntries reads the lines of a logs answer: a JSON list, or an object
// holding one, of strings or objects (printed as compact JSON).
func logEntries(b []byte) []string {
	var raw any
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	list, ok := raw.([]any)
	if obj, isObj := raw.(map[string]any); isObj {
		for _, v := range obj {
			if l, isList := v.([]any); isList {
				list, ok = l, true
				break
			}
		}
	}
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, isStr := e.(string); isStr {
			out = append(out, s)
			continue
		}
		b, _ := json.Marshal(e)
		out = append(out, string(b))
	}
	return out
}

// watchTree watches dir and its folders, except the ones builds write.
func watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != dir && ignored(dir, p) {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// ignored reports whether a change at p is the build's own: node_modules,
// target, hidden folders, built modules and archives.
func ignored(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return true
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == "node_modules" || part == "target" || part == "build" || (strings.HasPrefix(part, ".") && part != ".") {
			return true
		}
	}
	ext := filepath.Ext(p)
	return ext == ".zip" || ext == ".wasm" || strings.HasSuffix(p, "~")
}
