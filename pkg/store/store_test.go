package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

type counter struct{ n int }

type addOp struct{ Delta int }

func (*addOp) Type() OpType   { return 7 }
func (*addOp) ReadOnly() bool { return false }
func (o *addOp) Execute(_ context.Context, c *counter) (any, error) {
	if o.Delta < 0 {
		return nil, errors.New("negative delta")
	}
	c.n += o.Delta
	return c.n, nil
}

// direct runs operations in place: the smallest Store.
type direct struct{ c counter }

func (d *direct) Transact(ctx context.Context, op Operation[*counter]) (any, error) {
	return op.Execute(ctx, &d.c)
}

func jsonCodec() Codec[*counter] {
	return Codec[*counter]{
		Name: "add",
		Encode: func(op Operation[*counter]) ([]byte, error) {
			return json.Marshal(op)
		},
		Decode: func(b []byte) (Operation[*counter], error) {
			var op addOp
			if err := json.Unmarshal(b, &op); err != nil {
				return nil, err
			}
			return &op, nil
		},
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	r := NewRegistry[*counter]()
	r.Register(7, jsonCodec())
	b, err := r.Encode(&addOp{Delta: 3})
	if err != nil {
		t.Fatal(err)
	}
	op, err := r.Decode(7, b)
	if err != nil {
		t.Fatal(err)
	}
	if got := op.(*addOp).Delta; got != 3 {
		t.Errorf("decoded Delta = %d, want 3", got)
	}
	if !slices.Equal(r.Types(), []OpType{7}) {
		t.Errorf("Types = %v", r.Types())
	}
}

func TestRegistryRejectsBadInput(t *testing.T) {
	r := NewRegistry[*counter]()
	r.Register(7, jsonCodec())
	if _, err := r.Decode(8, []byte("{}")); err == nil || !strings.Contains(err.Error(), "unregistered") {
		t.Errorf("unknown type: err = %v", err)
	}
	if _, err := r.Decode(7, []byte("{garbage")); err == nil {
		t.Error("garbage payload decoded")
	}
	// A codec that returns an operation of another type is caught.
	r.Register(9, jsonCodec())
	if _, err := r.Decode(9, []byte(`{"Delta":1}`)); err == nil {
		t.Error("type mismatch not detected")
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a type twice did not panic")
		}
	}()
	r.Register(7, jsonCodec())
}

func TestDo(t *testing.T) {
	d := &direct{}
	n, err := Do[int](context.Background(), d, &addOp{Delta: 2})
	if err != nil || n != 2 {
		t.Fatalf("Do = %d, %v", n, err)
	}
	if _, err := Do[string](context.Background(), d, &addOp{Delta: 1}); err == nil {
		t.Error("wrong result type not reported")
	}
	if _, err := Do[int](context.Background(), d, &addOp{Delta: -1}); err == nil {
		t.Error("operation error not returned")
	}
}
