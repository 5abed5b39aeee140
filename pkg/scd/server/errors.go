package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/api"
	"github.com/raftdss/dss/pkg/models"
)

const jsonContentType = "application/json; charset=utf-8"

// statusFor is THE mapping from error codes to HTTP statuses (architecture:
// "mapped to HTTP status in exactly one place"). The route decides the two
// endpoint-dependent cases of the spec: area too large is 413 only for the
// subscription query (§4 step 5, §15).
func statusFor(code models.Code, rt *route) int {
	switch code {
	case models.CodeBadRequest:
		return http.StatusBadRequest
	case models.CodeUnauthenticated:
		return http.StatusUnauthorized
	case models.CodePermissionDenied:
		return http.StatusForbidden
	case models.CodeNotFound:
		return http.StatusNotFound
	case models.CodeVersionMismatch, models.CodeAlreadyExists, models.CodeMissingKey:
		return http.StatusConflict
	case models.CodeAreaTooLarge:
		if rt.areaTooLarge413 {
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	case models.CodeUnavailable:
		return http.StatusServiceUnavailable
	case models.CodeQuotaExceeded:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// writeError renders err as the error body of spec §3.7. Every error gets an
// ID that is both in the body and in the log line holding the cause, so an
// operator can find the cause of a client's report without the client ever
// seeing internals.
func (s *server) writeError(w http.ResponseWriter, rt *route, rq *request, err error) {
	if errors.Is(err, errBodyTooLarge) {
		plainError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	code := models.CodeOf(err)
	status := statusFor(code, rt)
	errID := uuid.NewString()
	fields := []zap.Field{
		zap.String("error_id", errID), zap.String("route", rt.name),
		zap.String("caller", rq.caller()), zap.Int("status", status), zap.Error(err),
	}
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", fields...)
		writeJSONValue(w, status, api.RenderInternalError(fmt.Sprintf("internal error (E:%s)", errID)))
		return
	}
	s.log.Info("request rejected", fields...)

	var coded *models.Error
	errors.As(err, &coded) // non-nil: only *models.Error has a non-internal code
	msg := fmt.Sprintf("%s (E:%s)", coded.Message, errID)
	// An OIR PUT answers every 409 (failed key check or plain OVN mismatch)
	// with an AirspaceConflictResponse (§3.7, §6.1 C/E); the missing lists
	// are only set by the key check.
	if status == http.StatusConflict && rt.conflictBody {
		withID := *coded
		withID.Message = msg
		writeJSONValue(w, status, api.RenderAirspaceConflict(rq.caller(), &withID))
		return
	}
	writeJSONValue(w, status, api.RenderError(msg))
}

// writeJSONValue sends v marshalled; error bodies are plain structs, so a
// marshalling failure is a bug and answers a bare 500.
func writeJSONValue(w http.ResponseWriter, status int, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	if err := encodeJSON(buf, v); err != nil {
		plainError(w, http.StatusInternalServerError, "internal error: could not encode the error response")
		return
	}
	writeJSON(w, status, buf.Bytes())
}

// bufferPool recycles response buffers: encoding into a reused buffer saves
// json.Marshal's copy of every body and most of its allocations.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps the pool from pinning the memory of a rare huge
// answer (a query over a crowded area).
const maxPooledBuffer = 64 << 10

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// encodeJSON appends v's JSON to buf, byte for byte what json.Marshal
// returns (json.Encoder adds a newline, which is dropped).
func encodeJSON(buf *bytes.Buffer, v any) error {
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// writeJSON sends a fully built JSON body: the status goes out only once the
// whole body exists, so no response is ever half written.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// plainError answers with a text/plain body, as spec §1 wants for 413 and
// for the handler timeout's 503 (they are not SCD errors).
func plainError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}
