package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64}
	for range 10000 {
		values = append(values, rng.Uint64N(math.MaxInt64))
		values = append(values, rng.Uint64N(1<<uint(rng.IntN(40)+1)))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		if up := bucketUpper(i); up < v {
			t.Fatalf("value %d above its bucket %d's upper bound %d", v, i, up)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Fatalf("value %d not above the previous bucket's upper bound %d", v, bucketUpper(i-1))
		}
		// The relative width of a bucket bounds the reporting error.
		if v >= subCount {
			lo := bucketUpper(i-1) + 1
			if w := float64(bucketUpper(i)-lo+1) / float64(lo); w > 1.0/subCount+1e-12 {
				t.Fatalf("bucket %d is %.4f wide relative to its start", i, w)
			}
		}
	}
}

func TestQuantilesSmallExact(t *testing.T) {
	var h histogram
	if h.quantile(.5) != 0 || h.mean() != 0 {
		t.Fatal("empty histogram must report 0")
	}
	for v := 1; v <= 10; v++ {
		h.record(time.Duration(v)) // below subCount: exact buckets
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{.1, 1}, {.5, 5}, {.51, 6}, {.95, 10}, {.99, 10}, {1, 10}} {
		if got := h.quantile(c.q); got != c.want {
			t.Errorf("q%.2f = %d, want %d", c.q, got, c.want)
		}
	}
	if h.min != 1 || h.max != 10 || h.n != 10 || h.mean() != 5 {
		t.Errorf("min %d max %d n %d mean %d", h.min, h.max, h.n, h.mean())
	}
	h.record(-5)
	if h.min != 0 {
		t.Errorf("a negative sample must count as 0, min %d", h.min)
	}
}

// TestQuantilesMatchSortedSamples compares the histogram with the exact
// nearest-rank percentiles of the same samples (a log-normal spread of
// latencies from µs to s): the error must stay within one bucket width.
func TestQuantilesMatchSortedSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h histogram
	var samples []time.Duration
	for range 50000 {
		d := time.Duration(math.Exp(rng.NormFloat64()*2+13)) + time.Microsecond
		samples = append(samples, d)
		h.record(d)
	}
	slices.Sort(samples)
	for _, q := range []float64{.01, .25, .5, .9, .95, .99, .999, 1} {
		exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.quantile(q)
		if got < exact {
			t.Errorf("q%g: %v below the exact %v (must never understate)", q, got, exact)
		}
		if rel := float64(got-exact) / float64(exact); rel > 1.0/subCount {
			t.Errorf("q%g: %v vs exact %v: relative error %.4f", q, got, exact, rel)
		}
	}
	if h.quantile(1) != samples[len(samples)-1] {
		t.Errorf("max %v, want %v", h.quantile(1), samples[len(samples)-1])
	}
}

func TestRecorderDropsLateResultsAndClassifies(t *testing.T) {
	deadline := time.Now()
	r := newRecorder(deadline)
	in := deadline.Add(-time.Millisecond)
	r.add("op", 200, time.Millisecond, in, "")
	r.add("op", 201, 3*time.Millisecond, in, "")
	r.add("op", 409, time.Hour, in, "")
	r.add("op", 404, time.Hour, in, "404 nope")
	r.add("op", 503, time.Hour, in, "")
	r.add("op", 0, time.Hour, in, "dial error")
	if r.add("op", 200, time.Millisecond, deadline.Add(time.Millisecond), "") {
		t.Error("a result after the deadline was counted")
	}
	_, ops, errs := r.snapshot()
	s := ops["op"]
	if s.ok != 2 || s.c409 != 1 || s.c4xx != 2 || s.c5xx != 1 || s.errs != 1 || r.late != 1 {
		t.Errorf("counts %+v late %d", s, r.late)
	}
	// Only successes enter the latency histogram.
	if s.lat.n != 2 || s.lat.max != 3*time.Millisecond {
		t.Errorf("latency histogram n=%d max=%v", s.lat.n, s.lat.max)
	}
	if errs["op"] != "dial error" {
		t.Errorf("sample error %q", errs["op"])
	}
}
