package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/rabbithole"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/policies"
)

// UploadForm is the multipart form of POST /rabbithole.
type UploadForm struct {
	File         huma.FormFile `form:"file" required:"true" doc:"The document: text, Markdown, HTML, PDF or JSON."`
	ChunkSize    int           `form:"chunk_size" required:"false" minimum:"0" maximum:"8192" doc:"Tokens per chunk (default 256; at least 64 unless the operator says otherwise)."`
	ChunkOverlap int           `form:"chunk_overlap" required:"false" minimum:"0" maximum:"8191" doc:"Tokens shared by neighbouring chunks, at most half the chunk size (default 64, or a quarter of a smaller chunk size)."`
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

// registerRabbithole serves the Rabbit Hole; uploadMaxBytes is the
// ingester's limit (0, without an ingester: bodies up to 64 MiB).
func (s *Server) registerRabbithole(uploadMaxBytes int64) {
	maxBody := int64(64 << 20)
	if uploadMaxBytes > 0 {
		maxBody = uploadMaxBytes + 1<<20
	}
	register(s, huma.Operation{
		OperationID: "uploadFile", Method: http.MethodPost, Path: "/rabbithole",
		Summary: "Read a document into declarative memory",
		Description: "The document is split into chunks, each stored with its source and time. Reading happens after the answer " +
			"(unless ?wait=true); the uploader's sockets get a notification when it is done. " +
			"Bounded by the operator: chunk_size has a minimum (422 below it), one upload stores at most so many chunks (413), " +
			"each user and each space have a quota of points (409 once reached), and each user may have only so many documents read at once (429 with Retry-After).",
		Tags: []string{"Rabbit Hole"}, MaxBodyBytes: maxBody, Errors: []int{http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusConflict, http.StatusTooManyRequests},
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
		if err := s.deps.Ingester.Check(ctx, id, opts); err != nil {
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
		return s.ingest(ctx, id, opts.Space, in.Wait, name, IngestionAccepted{Filename: name, ContentType: ctype}, run)
	})

	register(s, huma.Operation{
		OperationID: "uploadURL", Method: http.MethodPost, Path: "/rabbithole/web",
		Summary: "Read a web page into declarative memory",
		Description: "Only http and https; private and loopback addresses are refused unless the operator allows them. " +
			"The address is checked before the answer: a URL that cannot be reached (bad scheme, unknown host, refused address, " +
			"nothing listening) gets 400 with \"Unable to reach the URL\" and the reason; later failures arrive as notifications.",
		Tags: []string{"Rabbit Hole"}, Errors: []int{http.StatusBadRequest, http.StatusConflict, http.StatusTooManyRequests},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, in *struct {
		IngestionQuery
		Body WebInput
	}) (*struct{ Body IngestionAccepted }, error) {
		opts := rabbithole.Options{ChunkSize: in.Body.ChunkSize, ChunkOverlap: in.Body.ChunkOverlap, Metadata: in.Body.Metadata, Space: in.Space}
		id := identity(ctx)
		if err := s.deps.Ingester.Check(ctx, id, opts); err != nil {
			return nil, s.ingestError(err)
		}
		url := in.Body.URL
		if err := s.deps.Ingester.Reach(ctx, url); err != nil {
			return nil, s.ingestError(err)
		}
		run := func(ctx context.Context) (rabbithole.Result, error) { return s.deps.Ingester.URL(ctx, id, url, opts) }
		return s.ingest(ctx, id, opts.Space, in.Wait, url, IngestionAccepted{URL: url}, run)
	})

	register(s, huma.Operation{
		OperationID: "uploadMemory", Method: http.MethodPost, Path: "/rabbithole/memory",
		Summary:     "Import exported declarative memories",
		Description: "Takes the Cat's JSON export of declarative memories; vectors of another embedder are made again.",
		Tags:        []string{"Rabbit Hole"}, MaxBodyBytes: maxBody, Errors: []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests},
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
		job, err := s.deps.Ingester.Start(id, f.Filename, in.Space)
		if err != nil {
			return nil, s.ingestError(err)
		}
		res, err := job.Run(ctx, func(ctx context.Context) (rabbithole.Result, error) {
			return s.deps.Ingester.Memories(ctx, id, data, rabbithole.Options{Space: in.Space})
		})
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

	register(s, huma.Operation{
		OperationID: "listIngestions", Method: http.MethodGet, Path: "/rabbithole/ingestions",
		Summary: "Documents being read",
		Description: "The ingestions running now, oldest first, with their progress: your own, or everyone's when you may read users (USERS READ). " +
			"grin extension.",
		Tags: []string{"Rabbit Hole"},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, _ *struct{}) (*struct{ Body []rabbithole.Ingestion }, error) {
		all, err := s.allowed(ctx, policies.Users.Object(), policies.Read)
		if err != nil {
			return nil, s.internal(ctx, "decide", err)
		}
		user := identity(ctx).ID
		if all {
			user = ""
		}
		return &struct{ Body []rabbithole.Ingestion }{s.deps.Ingester.Ingestions(user)}, nil
	})

	register(s, huma.Operation{
		OperationID: "cancelIngestion", Method: http.MethodDelete, Path: "/rabbithole/ingestions/{id}",
		Summary: "Stop reading a document",
		Description: "Cancels a running ingestion and removes the chunks it stored; answers when they are gone, with the ingestion as it was. " +
			"Your own, or anyone's when you may edit users (USERS EDIT), who could revoke the upload permission anyway. grin extension.",
		Tags: []string{"Rabbit Hole"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Upload, policies.Write), func(ctx context.Context, in *struct {
		ID string `path:"id" maxLength:"64" doc:"The ingestion's id, from GET /rabbithole/ingestions."`
	}) (*struct{ Body rabbithole.Ingestion }, error) {
		notFound := huma.Error404NotFound("No such ingestion is running: it may have ended already")
		info, ok := s.deps.Ingester.Ingestion(in.ID)
		if !ok {
			return nil, notFound
		}
		me := identity(ctx)
		if info.UserID != me.ID {
			edit, err := s.allowed(ctx, policies.Users.Object(), policies.Edit)
			if err != nil {
				return nil, s.internal(ctx, "decide", err)
			}
			if !edit {
				read, err := s.allowed(ctx, policies.Users.Object(), policies.Read)
				if err != nil {
					return nil, s.internal(ctx, "decide", err)
				}
				if !read {
					return nil, notFound // others' ingestions are not even shown to them
				}
				return nil, huma.Error403Forbidden("Permission denied: stopping another user's ingestion needs USERS EDIT")
			}
		}
		ok, err := s.deps.Ingester.Cancel(ctx, in.ID, me.Name)
		if err != nil {
			return nil, s.internal(ctx, "cancel an ingestion", err)
		}
		if !ok {
			return nil, notFound
		}
		return &struct{ Body rabbithole.Ingestion }{info}, nil
	})
}

// ingest registers an ingestion (429 past the concurrency limits) and runs
// it now (wait) or after answering.
func (s *Server) ingest(ctx context.Context, id auth.Identity, space string, wait bool, source string, accepted IngestionAccepted, run func(context.Context) (rabbithole.Result, error)) (*struct{ Body IngestionAccepted }, error) {
	job, err := s.deps.Ingester.Start(id, source, space)
	if err != nil {
		return nil, s.ingestError(err)
	}
	if wait {
		res, err := job.Run(ctx, run)
		if err != nil {
			return nil, s.ingestError(err)
		}
		accepted.Info = fmt.Sprintf("%s was read: %d chunks stored", source, res.Chunks)
		accepted.Result = &res
		return &struct{ Body IngestionAccepted }{accepted}, nil
	}
	// The reading outlives the request but keeps its id, for its log
	// lines and its hooks.
	s.deps.Ingester.Background(requestid.With(s.deps.BaseContext, requestid.From(ctx)), job, run)
	accepted.Info = "The document is being read; a notification arrives on your sockets when it is done."
	return &struct{ Body IngestionAccepted }{accepted}, nil
}

// busyRetrySeconds is the Retry-After of a 429 for too many ingestions at
// once: reading a document takes seconds to minutes.
const busyRetrySeconds = 10

func (s *Server) ingestError(err error) error {
	var status *rabbithole.StatusError
	switch {
	case errors.Is(err, rabbithole.ErrUnreachable):
		return huma.Error400BadRequest(err.Error())
	case errors.Is(err, rabbithole.ErrBusy):
		return huma.ErrorWithHeaders(huma.Error429TooManyRequests(err.Error()),
			http.Header{"Retry-After": {strconv.Itoa(busyRetrySeconds)}})
	case errors.Is(err, rabbithole.ErrTooManyPoints):
		return huma.Error413RequestEntityTooLarge(err.Error())
	case errors.Is(err, rabbithole.ErrQuota), errors.Is(err, rabbithole.ErrCancelled):
		return huma.Error409Conflict(err.Error())
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
