package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/raftdss/dss/internal/pgtest"
	"github.com/raftdss/dss/pkg/models"
	"github.com/raftdss/dss/pkg/scd"
	"github.com/raftdss/dss/pkg/scd/repos"
	"github.com/raftdss/dss/pkg/scd/store/memstore"
	"github.com/raftdss/dss/pkg/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openStore opens a migrated store on a fresh database of the shared
// server; mod may adjust the config.
func openStore(t testing.TB, mod func(*Config)) *Store {
	t.Helper()
	cfg := Config{URL: pgtest.NewDatabase(t), Migrate: true, Logger: zaptest.NewLogger(t)}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// funcOp runs a function as an operation, to drive the repo directly.
type funcOp struct {
	ro bool
	fn func(ctx context.Context, r repos.Repo) (any, error)
}

func (*funcOp) Type() store.OpType { return 0xFFF0 }
func (o *funcOp) ReadOnly() bool   { return o.ro }
func (o *funcOp) Execute(ctx context.Context, r repos.Repo) (any, error) {
	return o.fn(ctx, r)
}

func write(fn func(ctx context.Context, r repos.Repo) (any, error)) *funcOp { return &funcOp{fn: fn} }
func read(fn func(ctx context.Context, r repos.Repo) (any, error)) *funcOp {
	return &funcOp{ro: true, fn: fn}
}

// lockstep runs every operation on a memstore and on a SQL store and fails
// the test when their answers differ: the memstore is the reference
// semantics every backend must reproduce.
type lockstep struct {
	t   *testing.T
	mem *memstore.Store
	sql *Store
	n   int
}

func newLockstep(t *testing.T) *lockstep {
	return &lockstep{t: t, mem: memstore.New(), sql: openStore(t, nil)}
}

// do runs op on both stores, compares, and returns the memstore's answer.
func (l *lockstep) do(op scd.Operation) (any, error) {
	l.t.Helper()
	l.n++
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mres, merr := l.mem.Transact(ctx, op)
	sres, serr := l.sql.Transact(ctx, op)
	switch {
	case (merr == nil) != (serr == nil):
		l.t.Fatalf("step %d (%T): memstore error %v, sqlstore error %v", l.n, op, merr, serr)
	case merr != nil:
		if models.CodeOf(merr) != models.CodeOf(serr) {
			l.t.Fatalf("step %d (%T): memstore %v, sqlstore %v", l.n, op, merr, serr)
		}
		// The operations' own errors must match exactly; internal errors
		// (whose messages name the store) and database failures only by
		// code.
		if models.CodeOf(serr) != models.CodeInternal && !isDBError(serr) && !reflect.DeepEqual(merr, serr) {
			l.t.Fatalf("step %d (%T): errors differ:\nmemstore %s\nsqlstore %s", l.n, op, dump(merr), dump(serr))
		}
	case !reflect.DeepEqual(mres, sres):
		l.t.Fatalf("step %d (%T): results differ:\nmemstore %s\nsqlstore %s", l.n, op, dump(mres), dump(sres))
	}
	return mres, merr
}

func (l *lockstep) must(op scd.Operation) any {
	l.t.Helper()
	res, err := l.do(op)
	if err != nil {
		l.t.Fatalf("step %d (%T): %v", l.n, op, err)
	}
	return res
}

func (l *lockstep) fails(op scd.Operation, code models.Code) {
	l.t.Helper()
	_, err := l.do(op)
	if err == nil || models.CodeOf(err) != code {
		l.t.Fatalf("step %d (%T): got %v, want %v", l.n, op, err, code)
	}
}

func dump(v any) string {
	var e *models.Error
	if err, ok := v.(error); ok && errors.As(err, &e) {
		b, _ := json.Marshal(e)
		return fmt.Sprintf("%v %s", err, b)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

// uid returns a valid UUIDv4 numbered n.
func uid(n int) models.ID { return models.ID(fmt.Sprintf("00000000-0000-4000-8000-%012x", n)) }

func cells(cs ...models.CellID) []models.CellID { return cs }
