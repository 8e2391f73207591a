package llm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// Defaults of the OpenAI-compatible providers.
const (
	DefaultOpenAIBaseURL       = "https://api.openai.com/v1"
	DefaultOpenAIModel         = "gpt-4o-mini"
	DefaultOpenAIEmbedderModel = "text-embedding-3-small"
	DefaultOllamaBaseURL       = "http://localhost:11434/v1"
)

const (
	// headerTimeout bounds the wait for a provider's response headers. It
	// is long because a local server (Ollama) loads the model from disk
	// before it answers the first request.
	headerTimeout = 5 * time.Minute
	// streamIdleTimeout bounds the silence between two lines of a stream,
	// so a connection that died without a reset does not hold a chat
	// forever; the stream as a whole may take as long as it takes.
	streamIdleTimeout = 5 * time.Minute
	// checkTimeout bounds the one request a factory makes to learn that
	// the settings work, so a Put never hangs on a black-holed address.
	checkTimeout = 30 * time.Second
	// maxErrorBody is how much of an error answer is read; the message
	// is cut to maxMessage runes, enough for any provider's explanation.
	maxErrorBody = 64 << 10
	maxMessage   = 300
	// maxStreamLine bounds one line of a stream (one chunk of JSON).
	maxStreamLine = 4 << 20
	// maxBody bounds a whole JSON answer (a model list, a batch of
	// embeddings: 64 × 3072 numbers is about 4 MB).
	maxBody = 64 << 20
)

// httpClient is shared by every provider, so that replacing a
// configuration does not leave a transport's idle connections behind.
// Connecting and the response headers are bounded; reading the body is
// not, since a stream is as long as the reply. Redirects are not
// followed: a POST turned into a GET, or a key sent to a host the
// operator did not name, is worse than a clear error.
var httpClient = &http.Client{
	Transport: func() *http.Transport {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
		t.ResponseHeaderTimeout = headerTimeout
		return t
	}(),
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// OpenAIConfig configures a chat model served over the OpenAI
// chat-completions protocol.
type OpenAIConfig struct {
	// BaseURL is the API root the paths are appended to, such as
	// https://api.openai.com/v1 or http://localhost:11434/v1.
	BaseURL string `json:"base_url"`
	// APIKey is sent as a bearer token when set.
	APIKey string `json:"api_key,omitempty"`
	// Model names the model on the server.
	Model string `json:"model"`
	// Temperature is the sampling temperature (0 to 2); nil leaves it to
	// the server.
	Temperature *float64 `json:"temperature,omitempty"`
	// MaxTokens caps the reply's length; 0 leaves it to the server.
	MaxTokens int `json:"max_tokens,omitempty"`
}

// Validate reports every problem of the settings at once.
func (c *OpenAIConfig) Validate() error {
	errs := checkEndpoint(c.BaseURL, c.APIKey, c.Model)
	if t := c.Temperature; t != nil && (math.IsNaN(*t) || *t < 0 || *t > 2) {
		errs = append(errs, fmt.Errorf("temperature must be between 0 and 2, not %v", *t))
	}
	if c.MaxTokens < 0 {
		errs = append(errs, fmt.Errorf("max_tokens must be positive, not %d", c.MaxTokens))
	}
	return errors.Join(errs...)
}

// checkBaseURL accepts an http or https URL with a host. User info, a
// query or a fragment are refused: the paths are appended to the URL, and
// credentials in it would be shown to anyone who reads the settings.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("base_url is required")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("base_url must be an http or https URL with a host, like %s", DefaultOpenAIBaseURL)
	case u.User != nil:
		return errors.New("base_url must not carry credentials; put the key in api_key")
	case u.RawQuery != "" || u.Fragment != "":
		return errors.New("base_url must not have a query or a fragment")
	}
	return nil
}

// checkAPIKey refuses keys that cannot travel in a header, so a pasted
// key with a line break in it fails here, clearly, and not at the first
// chat. Surrounding blanks are trimmed by the constructors.
func checkAPIKey(key string) error {
	if strings.IndexFunc(strings.TrimSpace(key), func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII
	}) >= 0 {
		return errors.New("api_key must not contain spaces, line breaks or non-ASCII characters")
	}
	return nil
}

// endpoint joins the API root and a path.
func endpoint(baseURL, path string) string {
	return strings.TrimRight(baseURL, "/") + path
}

func hostOf(baseURL string) string {
	u, _ := url.Parse(baseURL)
	return u.Host
}

// OpenAIChat is a Model served over the OpenAI chat-completions protocol,
// streaming: OpenAI itself, Ollama's /v1, vLLM, llama.cpp's server.
//
// Notes: safe for concurrent use.
type OpenAIChat struct {
	cfg  OpenAIConfig
	url  string // {base_url}/chat/completions
	host string
	// idle bounds the silence between two lines of a stream.
	idle time.Duration
}

// NewOpenAIChat validates cfg and returns the model. It does not contact
// the server; Check does.
func NewOpenAIChat(cfg OpenAIConfig) (*OpenAIChat, error) {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	cfg.BaseURL = strings.TrimSpace(cfg.BaseURL)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &OpenAIChat{
		cfg:  cfg,
		url:  endpoint(cfg.BaseURL, "/chat/completions"),
		host: hostOf(cfg.BaseURL),
		idle: streamIdleTimeout,
	}, nil
}

// Name identifies the model and its server, never its key.
func (m *OpenAIChat) Name() string { return "openai-compatible:" + m.cfg.Model + "@" + m.host }

// Check asks the server for its models (GET {base_url}/models), so that
// settings that cannot work are refused when they are saved and not at
// the first chat. An unreachable server and a refused key fail; a server
// without the endpoint (404) passes, since several compatible servers
// lack it. Notes go to logger (may be nil).
func (m *OpenAIChat) Check(ctx context.Context, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	what := "the model list at " + m.host
	resp, err := send(ctx, http.MethodGet, endpoint(m.cfg.BaseURL, "/models"), m.cfg.APIKey, what, nil, "application/json")
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			switch se.code {
			case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
				logger.Warn("the model server has no model list; if chats fail, check that base_url is the API root (often ending in /v1)",
					"base_url", m.cfg.BaseURL, "status", se.code)
				return nil
			case http.StatusUnauthorized, http.StatusForbidden:
				if m.cfg.APIKey == "" {
					return fmt.Errorf("the server at %s requires an api_key: %w", m.cfg.BaseURL, err)
				}
				return fmt.Errorf("the server at %s refused the api_key; check it: %w", m.cfg.BaseURL, err)
			}
		}
		return fmt.Errorf("check the server at %s: %w", m.cfg.BaseURL, err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&list); err != nil {
		return fmt.Errorf("%w: the server at %s answered %s with something other than an OpenAI model list (%v); check base_url",
			ErrProvider, m.cfg.BaseURL, endpoint(m.cfg.BaseURL, "/models"), err)
	}
	if len(list.Data) > 0 {
		for _, d := range list.Data {
			// Ollama lists "llama3:latest" for what is asked as "llama3".
			if d.ID == m.cfg.Model || d.ID == m.cfg.Model+":latest" {
				return nil
			}
		}
		logger.Warn("the model server does not list the configured model; chats may fail",
			"base_url", m.cfg.BaseURL, "model", m.cfg.Model, "listed", len(list.Data))
	}
	return nil
}

type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Stream      bool      `json:"stream"`
	Temperature *float64  `json:"temperature,omitempty"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
}

// chatChunk is one event of a chat-completions stream. Error is set by
// servers that fail after the stream began.
type chatChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error json.RawMessage `json:"error"`
}

// Generate implements Model: it streams the completion, passing each
// piece of content to onToken as it arrives.
//
// The stream normally ends with "data: [DONE]"; one that simply ends is
// accepted when it carried a reply or a finish reason, and is an error
// otherwise. A server that answers with one JSON completion instead of a
// stream is accepted too, its reply passed to onToken in one piece.
func (m *OpenAIChat) Generate(ctx context.Context, req Request, onToken func(string) error) (string, error) {
	messages := req.Messages
	if len(messages) == 0 {
		messages = []Message{{Role: RoleUser, Content: req.Input}}
	}
	// The stream's context is cancelled with a cause when the server goes
	// silent for too long, and its own cause when the caller's is done.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	what := "chat completions at " + m.host
	resp, err := send(ctx, http.MethodPost, m.url, m.cfg.APIKey, what, chatRequest{
		Model: m.cfg.Model, Messages: messages, Stream: true,
		Temperature: m.cfg.Temperature, MaxTokens: m.cfg.MaxTokens,
	}, "text/event-stream")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ctype == "application/json" {
		return m.whole(ctx, resp.Body, what, onToken)
	}

	idle := time.AfterFunc(m.idle, func() {
		cancel(fmt.Errorf("%w: %s sent nothing for %v", ErrProvider, what, m.idle))
	})
	defer idle.Stop()
	events := newSSEReader(resp.Body, func() { idle.Reset(m.idle) })
	var reply strings.Builder
	done, finished := false, false
	for {
		data, ok := events.next()
		if !ok {
			break
		}
		if err := context.Cause(ctx); err != nil {
			return "", err
		}
		if strings.TrimSpace(data) == "[DONE]" {
			done = true
			break
		}
		if strings.TrimSpace(data) == "" {
			continue
		}
		var c chatChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			return "", fmt.Errorf("%w: %s sent a malformed stream chunk (%v): %s", ErrProvider, what, err, clean(data, m.cfg.APIKey))
		}
		if msg := errorText(c.Error); msg != "" {
			return "", fmt.Errorf("%w: %s failed mid-stream: %s", ErrProvider, what, clean(msg, m.cfg.APIKey))
		}
		if len(c.Choices) == 0 {
			continue // usage or filter results, no content
		}
		choice := c.Choices[0]
		if choice.FinishReason != nil && *choice.FinishReason != "" {
			finished = true
		}
		piece := choice.Delta.Content
		if piece == "" {
			continue // the role-only first delta, or the last one
		}
		reply.WriteString(piece)
		if onToken != nil {
			// The listener's time is not the provider's silence.
			idle.Stop()
			if err := onToken(piece); err != nil {
				return "", err
			}
			idle.Reset(m.idle)
		}
	}
	if err := events.err(); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return "", cause
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return "", fmt.Errorf("%w: %s sent a stream line longer than %d bytes", ErrProvider, what, maxStreamLine)
		}
		return "", fmt.Errorf("%w: the stream from %s broke off after %d bytes of reply: %v", ErrProvider, what, reply.Len(), err)
	}
	if !done && !finished && reply.Len() == 0 {
		if ctype != "text/event-stream" {
			return "", fmt.Errorf("%w: %s answered %q, not an event stream of a reply; check base_url", ErrProvider, what, ctype)
		}
		return "", fmt.Errorf("%w: the stream from %s ended without a reply", ErrProvider, what)
	}
	return reply.String(), nil
}

// whole reads a non-streamed completion, for servers that ignore
// "stream": true.
func (m *OpenAIChat) whole(ctx context.Context, body io.Reader, what string, onToken func(string) error) (string, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxBody))
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return "", cause
		}
		return "", fmt.Errorf("%w: read the answer of %s: %v", ErrProvider, what, err)
	}
	var v struct {
		Choices []struct {
			Message Message `json:"message"`
		} `json:"choices"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("%w: %s answered malformed JSON (%v): %s", ErrProvider, what, err, clean(string(b), m.cfg.APIKey))
	}
	if msg := errorText(v.Error); msg != "" {
		return "", fmt.Errorf("%w: %s failed: %s", ErrProvider, what, clean(msg, m.cfg.APIKey))
	}
	if len(v.Choices) == 0 {
		return "", fmt.Errorf("%w: %s answered without a reply", ErrProvider, what)
	}
	reply := v.Choices[0].Message.Content
	if onToken != nil && reply != "" {
		if err := onToken(reply); err != nil {
			return "", err
		}
	}
	return reply, nil
}

// sseReader reads the data of server-sent events: "data:" lines gathered
// until a blank line, comments (":" lines, used as keepalives) and other
// fields skipped.
type sseReader struct {
	sc    *bufio.Scanner
	data  []string
	touch func() // called for every line, keepalives included
}

func newSSEReader(r io.Reader, touch func()) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxStreamLine)
	return &sseReader{sc: sc, touch: touch}
}

// next returns the data of the next event, false at the end of the
// stream or on a read error (see err).
func (r *sseReader) next() (string, bool) {
	for r.sc.Scan() {
		r.touch()
		line := r.sc.Text()
		if line == "" {
			if len(r.data) > 0 {
				return r.flush(), true
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		if field == "data" {
			r.data = append(r.data, strings.TrimPrefix(value, " "))
		}
	}
	// A last event without its closing blank line still counts, unless
	// the stream broke.
	if r.sc.Err() == nil && len(r.data) > 0 {
		return r.flush(), true
	}
	return "", false
}

func (r *sseReader) flush() string {
	d := strings.Join(r.data, "\n")
	r.data = r.data[:0]
	return d
}

func (r *sseReader) err() error { return r.sc.Err() }

// statusError is a provider's non-2xx answer.
type statusError struct {
	code int
	msg  string // the whole message, ErrProvider included
}

func (e *statusError) Error() string { return e.msg }
func (e *statusError) Unwrap() error { return ErrProvider }

// send makes one request to a provider and returns its 2xx response.
// Anything else is an error wrapping ErrProvider with the status and what
// the provider said, scrubbed of the key; a cancelled ctx is returned as
// its cause.
func send(ctx context.Context, method, u, key, what string, body any, accept string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode the request to %s: %w", what, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("request %s: %w", what, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "grin")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			if errors.Is(cause, context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: %s did not answer in time: %w", ErrProvider, what, cause)
			}
			return nil, cause
		}
		return nil, fmt.Errorf("%w: cannot reach %s: %s", ErrProvider, what, clean(err.Error(), key))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := fmt.Sprintf("%v: %s answered %s", ErrProvider, what, resp.Status)
	if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
		msg += ", redirecting to " + clean(loc, key) + "; set base_url to where it points"
	}
	if text := clean(providerMessage(b), key); text != "" {
		msg += ": " + text
	}
	return nil, &statusError{code: resp.StatusCode, msg: msg}
}

// providerMessage finds the explanation in an error answer: OpenAI's
// {"error":{"message":…}}, Ollama's {"error":"…"}, FastAPI's
// {"detail":…}, or else the body as it is.
func providerMessage(body []byte) string {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		for _, m := range []string{errorText(v.Error), v.Message, errorText(v.Detail)} {
			if m != "" {
				return m
			}
		}
	}
	return string(body)
}

// errorText is a JSON error value as text: a string as it is, an object's
// "message", or else the JSON itself; "" when absent or null.
func errorText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(raw, &o) == nil && o.Message != "" {
		return o.Message
	}
	return string(raw)
}

// clean makes provider text fit for an error message: the key replaced
// wherever it appears (some servers echo what they were sent), control
// characters dropped, whitespace folded, and the whole cut to maxMessage
// runes. The key goes before the cut, so no part of it survives.
func clean(s, key string) string {
	if key != "" {
		s = strings.ReplaceAll(s, key, "[api_key]")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	return oneLine(s, maxMessage)
}

var _ Model = (*OpenAIChat)(nil)

// checkEndpoint reports the problems of a remote provider's address, key
// and model, which chat and embeddings configurations share.
func checkEndpoint(baseURL, apiKey, model string) []error {
	var errs []error
	if err := checkBaseURL(baseURL); err != nil {
		errs = append(errs, err)
	}
	if err := checkAPIKey(apiKey); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(model) == "" {
		errs = append(errs, errors.New("model is required"))
	}
	return errs
}
