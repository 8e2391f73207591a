package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/rabbithole"
	"github.com/grin-ai/grin/policies"
)

// UploadForm is the multipart form of POST /rabbithole.
type UploadForm struct {
	File         huma.FormFile `form:"file" required:"true" doc:"The document: text, Markdown, HTML, PDF or JSON."`
	ChunkSize    int           `form:"chunk_size" required:"false" minimum:"0" maximum:"8192" doc:"Tokens per chunk (default 256)."`
	ChunkOverlap int           `form:"chunk_overlap" required:"false" minimum:"0" maximum:"8191" doc:"Tokens shared by neighbouring chunks (default 64)."`
	Metadata     string        `form:"metadata" required:"false" maxLength:"65536" doc:"A JSON object added to every chunk's metadata."`
}

// IngestionQuery holds grin's extensions of the Cat's ingestion calls.
type IngestionQuery struct {
	Space string `query:"space" maxLength:"64" doc:"The declarative space to store in (default shared). grin extension."`
	Wait  bool   `query:"wait" doc:"Answer when reading is done, with the number of chunks, instead of at once. grin extension."`
}

// IngestionAccepted is the Cat's answer to an upload.
type IngestionAccepted struct {
	Filename    string             `json:"filename,omitempty"`
	URL         string             `json:"url,omitempty"`
	ContentType string             `json:"content_type,omitempty"`
	Info        string             `json:"info"`
	Result      *rabbithole.Result `json:"result,omitempty" doc:"With ?wait=true: what was stored."`
}

// AllowedMimeTypes lists the readable document types.
type AllowedMimeTypes struct {
	Allowed []string `json:"allowed"`
}

// WebInput is the body of POST /rabbithole/web.
type WebInput struct {
	URL          string         `json:"url" minLength:"1" maxLength:"4096" doc:"An http or https address."`
	ChunkSize    int            `json:"chunk_size,omitempty" minimum:"0" maximum:"8192"`
	ChunkOverlap int            `json:"chunk_overlap,omitempty" minimum:"0" maximum:"8191"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

func (s *Server) registerRabbithole() {
	maxBody := int64(64 << 20) // the document is built without a server
	if s.deps.Ingester != nil {
		maxBody = s.deps.Ingester.MaxBytes() + 1<<20
	}
	register(s, huma.Operation{
		OperationID: "uploadFile", Method: http.MethodPost, Path: "/rabbithole",
		Summary: "Read a document into declarative memory",
		Description: "The document is split into chunks, each stored with its source and time. Reading happens after the answer " +
			"(unless ?wait=true); the uploader's sockets get a notification when it is done.",
		Tags: []string{"Rabbit Hole"}, MaxBodyBytes: maxBody, Errors: []int{http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusConflict},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, in *struct {
		IngestionQuery
		RawBody huma.MultipartFormFiles[UploadForm]
	}) (*struct{ Body IngestionAccepted }, error) {
		form := in.RawBody.Data()
		opts := rabbithole.Options{ChunkSize: form.ChunkSize, ChunkOverlap: form.ChunkOverlap, Space: in.Space}
		if form.Metadata != "" {
			if err := json.Unmarshal([]byte(form.Metadata), &opts.Metadata); err != nil {
				return nil, huma.Error422UnprocessableEntity("metadata must be a JSON object: " + err.Error())
			}
		}
		id := identity(ctx)
		if err := s.deps.Ingester.Check(id, opts); err != nil {
			return nil, s.ingestError(err)
		}
		// The form's file lives only as long as the request: read it now.
		data, err := io.ReadAll(io.LimitReader(form.File, s.deps.Ingester.MaxBytes()+1))
		form.File.Close()
		if err != nil {
			return nil, huma.Error400BadRequest("could not read the uploaded file: " + err.Error())
		}
		if int64(len(data)) > s.deps.Ingester.MaxBytes() {
			// Refused now, not in a notification after the answer.
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("%s is larger than %s, the largest document grin accepts (GRIN_UPLOAD_MAX_MB)", form.File.Filename, mib(s.deps.Ingester.MaxBytes())))
		}
		name, ctype := form.File.Filename, form.File.ContentType
		run := func(ctx context.Context) (rabbithole.Result, error) {
			return s.deps.Ingester.File(ctx, id, name, ctype, bytes.NewReader(data), opts)
		}
		return s.ingest(ctx, id, in.Wait, name, IngestionAccepted{Filename: name, ContentType: ctype}, run)
	})

	register(s, huma.Operation{
		OperationID: "uploadURL", Method: http.MethodPost, Path: "/rabbithole/web",
		Summary:     "Read a web page into declarative memory",
		Description: "Only http and https; private and loopback addresses are refused unless the operator allows them.",
		Tags:        []string{"Rabbit Hole"}, Errors: []int{http.StatusConflict},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, in *struct {
		IngestionQuery
		Body WebInput
	}) (*struct{ Body IngestionAccepted }, error) {
		opts := rabbithole.Options{ChunkSize: in.Body.ChunkSize, ChunkOverlap: in.Body.ChunkOverlap, Metadata: in.Body.Metadata, Space: in.Space}
		id := identity(ctx)
		if err := s.deps.Ingester.Check(id, opts); err != nil {
			return nil, s.ingestError(err)
		}
		url := in.Body.URL
		run := func(ctx context.Context) (rabbithole.Result, error) { return s.deps.Ingester.URL(ctx, id, url, opts) }
		return s.ingest(ctx, id, in.Wait, url, IngestionAccepted{URL: url}, run)
	})

	register(s, huma.Operation{
		OperationID: "uploadMemory", Method: http.MethodPost, Path: "/rabbithole/memory",
		Summary:     "Import exported declarative memories",
		Description: "Takes the Cat's JSON export of declarative memories; vectors of another embedder are made again.",
		Tags:        []string{"Rabbit Hole"}, MaxBodyBytes: maxBody, Errors: []int{http.StatusRequestEntityTooLarge, http.StatusConflict},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, in *struct {
		IngestionQuery
		RawBody huma.MultipartFormFiles[struct {
			File huma.FormFile `form:"file" required:"true" doc:"The JSON export."`
		}]
	}) (*struct{ Body IngestionAccepted }, error) {
		f := in.RawBody.Data().File
		data, err := io.ReadAll(io.LimitReader(f, s.deps.Ingester.MaxBytes()+1))
		f.Close()
		if err != nil {
			return nil, huma.Error400BadRequest("could not read the uploaded file: " + err.Error())
		}
		id := identity(ctx)
		res, err := s.deps.Ingester.Memories(ctx, id, data, rabbithole.Options{Space: in.Space})
		if err != nil {
			return nil, s.ingestError(err)
		}
		return &struct{ Body IngestionAccepted }{IngestionAccepted{Filename: f.Filename, Info: fmt.Sprintf("%d memories imported", res.Chunks), Result: &res}}, nil
	})

	register(s, huma.Operation{
		OperationID: "getAllowedMimetypes", Method: http.MethodGet, Path: "/rabbithole/allowed-mimetypes",
		Summary: "Readable document types", Tags: []string{"Rabbit Hole"},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, _ *struct{}) (*struct{ Body AllowedMimeTypes }, error) {
		return &struct{ Body AllowedMimeTypes }{AllowedMimeTypes{Allowed: rabbithole.AllowedMimeTypes()}}, nil
	})
}

// ingest runs an ingestion now (wait) or after answering.
func (s *Server) ingest(ctx context.Context, id auth.Identity, wait bool, source string, accepted IngestionAccepted, run func(context.Context) (rabbithole.Result, error)) (*struct{ Body IngestionAccepted }, error) {
	if wait {
		res, err := run(ctx)
		if err != nil {
			return nil, s.ingestError(err)
		}
		accepted.Info = fmt.Sprintf("%s was read: %d chunks stored", source, res.Chunks)
		accepted.Result = &res
		return &struct{ Body IngestionAccepted }{accepted}, nil
	}
	s.deps.Ingester.Background(s.deps.BaseContext, id, source, run)
	accepted.Info = "The document is being read; a notification arrives on your sockets when it is done."
	return &struct{ Body IngestionAccepted }{accepted}, nil
}

func (s *Server) ingestError(err error) error {
	var status *rabbithole.StatusError
	switch {
	case errors.Is(err, rabbithole.ErrForbidden):
		return huma.Error403Forbidden(err.Error())
	case errors.Is(err, rabbithole.ErrUnsupportedType):
		return huma.Error415UnsupportedMediaType(err.Error())
	case errors.Is(err, rabbithole.ErrTooLarge):
		return huma.Error413RequestEntityTooLarge(err.Error())
	case errors.Is(err, rabbithole.ErrForbiddenAddress), errors.Is(err, rabbithole.ErrInvalidURL),
		errors.Is(err, rabbithole.ErrInvalidChunking), errors.Is(err, rabbithole.ErrMalformed),
		errors.Is(err, rabbithole.ErrEncrypted), errors.Is(err, rabbithole.ErrNoText), errors.Is(err, rabbithole.ErrTooManyRedirects):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.As(err, &status):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return huma.Error422UnprocessableEntity("reading took too long: " + err.Error())
	}
	if errors.Is(err, llm.ErrProvider) {
		return huma.Error502BadGateway("the embedder failed: " + err.Error())
	}
	if errors.Is(err, memory.ErrDimensions) {
		return memoryConflict(err)
	}
	return s.internal(context.Background(), "reading a document", err)
}
