package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
)

// ingest uploads files to a running grin's rabbit hole, one after another,
// showing a progress bar of the bytes sent, and waits for each to be read.
// It goes through the API rather than the data directory so the server's
// caches, hooks and policy see every chunk.
func ingest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("url", envOr(getenv, "GRIN_URL", "http://127.0.0.1:1865"), "the grin server (GRIN_URL)")
	token := fs.String("token", getenv("GRIN_TOKEN"), "a JWT or the API key (GRIN_TOKEN); empty while authentication is off")
	user := fs.String("user-id", "", "with the API key or auth off: the user to upload as")
	space := fs.String("space", "", "the declarative space (default shared)")
	chunkSize := fs.Int("chunk-size", 0, "tokens per chunk (default 256)")
	chunkOverlap := fs.Int("chunk-overlap", 0, "tokens shared by neighbouring chunks (default 64)")
	metadata := fs.String("metadata", "", "a JSON object added to every chunk's metadata")
	quiet := fs.Bool("quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: grin ingest [flags] FILE...\n\nReads each file into declarative memory through a running grin's POST /rabbithole.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("name at least one file")
	}
	if *metadata != "" && !json.Valid([]byte(*metadata)) {
		return fmt.Errorf("--metadata is not JSON: %s", *metadata)
	}
	q := url.Values{"wait": {"true"}}
	if *space != "" {
		q.Set("space", *space)
	}
	endpoint := *server + "/rabbithole/?" + q.Encode()
	client := &http.Client{Timeout: 30 * time.Minute}
	failed := 0
	for i, path := range fs.Args() {
		label := fmt.Sprintf("[%d/%d] %s", i+1, fs.NArg(), filepath.Base(path))
		res, err := uploadFile(ctx, client, endpoint, path, label, *token, *user, *chunkSize, *chunkOverlap, *metadata, *quiet, stderr)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: %d chunks stored in %s\n", path, res.Chunks, res.Space)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not read", failed, fs.NArg())
	}
	return nil
}

type ingestResult struct {
	Chunks int    `json:"chunks"`
	Space  string `json:"space"`
}

func uploadFile(ctx context.Context, client *http.Client, endpoint, path, label, token, user string, size, overlap int, metadata string, quiet bool, stderr io.Writer) (ingestResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ingestResult{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return ingestResult{}, err
	}
	pr, pw := io.Pipe()
	w := multipart.NewWriter(pw)
	var src io.Reader = f
	if !quiet {
		bar := newProgressBar(stderr, label, info.Size(), progressbar.OptionShowBytes(true))
		reader := progressbar.NewReader(f, bar)
		src = &reader
	}
	go func() {
		err := func() error {
			h := make(map[string][]string)
			h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, filepath.Base(path))}
			if t := mime.TypeByExtension(filepath.Ext(path)); t != "" {
				h["Content-Type"] = []string{t}
			}
			part, err := w.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, src); err != nil {
				return err
			}
			for k, v := range map[string]string{"metadata": metadata} {
				if v != "" {
					w.WriteField(k, v)
				}
			}
			if size > 0 {
				w.WriteField("chunk_size", strconv.Itoa(size))
			}
			if overlap > 0 {
				w.WriteField("chunk_overlap", strconv.Itoa(overlap))
			}
			return w.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, pr)
	if err != nil {
		return ingestResult{}, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if user != "" {
		req.Header.Set("user_id", user)
	}
	resp, err := client.Do(req)
	if err != nil {
		return ingestResult{}, fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(body, &p)
		if p.Detail == "" {
			p.Detail = string(body)
		}
		return ingestResult{}, fmt.Errorf("the server answered %s: %s", resp.Status, p.Detail)
	}
	var out struct {
		Result ingestResult `json:"result"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return ingestResult{}, fmt.Errorf("read the answer: %w", err)
	}
	return out.Result, nil
}

func envOr(getenv func(string) string, k, def string) string {
	if v := getenv(k); v != "" {
		return v
	}
	return def
}
