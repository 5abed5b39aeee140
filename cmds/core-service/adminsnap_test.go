package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/raftdss/dss/pkg/scd/store/raftstore"
)

type fakeBackup struct {
	file []byte
	err  error
	// entered, when set, is signalled on entry; the backup then waits for
	// release.
	entered, release chan struct{}
}

func (f fakeBackup) Backup(context.Context) ([]byte, raftstore.BackupHeader, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
		<-f.release
	}
	return f.file, raftstore.BackupHeader{Index: 7}, f.err
}

func TestSnapshotEndpoint(t *testing.T) {
	admin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin "+r.URL.Path) })
	get := func(h http.Handler, method, path string) (int, string, http.Header) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String(), rec.Header()
	}

	h := withSnapshotEndpoint(admin, fakeBackup{file: []byte("backup bytes")}, zap.NewNop())
	if code, body, hdr := get(h, http.MethodGet, "/snapshot"); code != 200 || body != "backup bytes" ||
		hdr.Get("Content-Length") != "12" || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET /snapshot: %d %q %v", code, body, hdr)
	}
	if code, body, _ := get(h, http.MethodGet, "/members"); code != 200 || body != "admin /members" {
		t.Fatalf("GET /members: %d %q", code, body)
	}
	// Other methods are the admin mux's to answer (404 there).
	if code, body, _ := get(h, http.MethodPost, "/snapshot"); code != 200 || body != "admin /snapshot" {
		t.Fatalf("POST /snapshot: %d %q", code, body)
	}

	h = withSnapshotEndpoint(admin, fakeBackup{err: errors.New("no quorum")}, zap.NewNop())
	if code, body, _ := get(h, http.MethodGet, "/snapshot"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, "no backup taken: no quorum") {
		t.Fatalf("GET /snapshot without quorum: %d %q", code, body)
	}

	// Without a Raft store there is no endpoint.
	if h := withSnapshotEndpoint(admin, nil, zap.NewNop()); h == nil {
		t.Fatal("nil handler")
	} else if code, body, _ := get(h, http.MethodGet, "/snapshot"); code != 200 || body != "admin /snapshot" {
		t.Fatalf("GET /snapshot without a Raft store reached %d %q", code, body)
	}
	// One at a time.
	slow := fakeBackup{file: []byte("x"), entered: make(chan struct{}), release: make(chan struct{})}
	h = withSnapshotEndpoint(admin, slow, zap.NewNop())
	first := make(chan int)
	go func() {
		code, _, _ := get(h, http.MethodGet, "/snapshot")
		first <- code
	}()
	<-slow.entered
	if code, body, _ := get(h, http.MethodGet, "/snapshot"); code != http.StatusConflict || !strings.Contains(body, "another backup") {
		t.Fatalf("a second backup at once: %d %q", code, body)
	}
	close(slow.release)
	if code := <-first; code != 200 {
		t.Fatalf("the first backup: %d", code)
	}
	if backupNode(&backend{}) != nil {
		t.Fatal("backupNode of a backend without a Raft store is not nil")
	}
}
