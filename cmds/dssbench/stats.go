package main

import (
	"sort"
	"sync"
	"time"
)

// outcome classifies one request.
type outcome int

const (
	outOK       outcome = iota // 2xx
	outConflict                // 409 (also counted in 4xx)
	out4xx                     // any other 4xx
	out5xx                     // 5xx
	outError                   // no HTTP answer: transport error or timeout
)

func classify(status int) outcome {
	switch {
	case status >= 200 && status < 300:
		return outOK
	case status == 409:
		return outConflict
	case status >= 400 && status < 500:
		return out4xx
	case status >= 500:
		return out5xx
	default:
		return outError
	}
}

// opStats is what one operation type accumulated in one phase. Latency is
// recorded for successful requests only, so that fast rejections (409s
// under contention) do not flatter the percentiles.
type opStats struct {
	ok, c4xx, c409, c5xx, errs uint64
	lat                        histogram
}

// recorder collects the outcomes of one phase from every worker. Results
// that complete after the phase deadline are dropped, so throughput is
// exactly (results inside the window) / (window length) however long the
// requests in flight at the deadline take to drain.
type recorder struct {
	mu       sync.Mutex
	deadline time.Time
	ops      map[string]*opStats
	late     uint64 // results dropped for completing after the deadline
	// lastErr keeps one sample error message per op type, to tell the
	// operator why requests failed without flooding the output.
	lastErr map[string]string
}

func newRecorder(deadline time.Time) *recorder {
	return &recorder{deadline: deadline, ops: map[string]*opStats{}, lastErr: map[string]string{}}
}

// add records one result of op. status is the HTTP status, or 0 for a
// transport error; latency counts only for successes. It reports whether
// the result fell inside the measurement window.
func (r *recorder) add(op string, status int, latency time.Duration, end time.Time, errMsg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if end.After(r.deadline) {
		r.late++
		return false
	}
	s := r.ops[op]
	if s == nil {
		s = &opStats{}
		r.ops[op] = s
	}
	switch classify(status) {
	case outOK:
		s.ok++
		s.lat.record(latency)
	case outConflict:
		s.c409++
		s.c4xx++
	case out4xx:
		s.c4xx++
	case out5xx:
		s.c5xx++
	case outError:
		s.errs++
	}
	if errMsg != "" {
		r.lastErr[op] = errMsg
	}
	return true
}

// totals sums the counters over every request (for the progress line):
// flights are composites of requests already counted.
func (r *recorder) totals() (ok, c4xx, c409, c5xx, errs uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, s := range r.ops {
		if name == opFlight {
			continue
		}
		ok += s.ok
		c4xx += s.c4xx
		c409 += s.c409
		c5xx += s.c5xx
		errs += s.errs
	}
	return
}

// snapshot copies the per-op stats, sorted by op name.
func (r *recorder) snapshot() ([]string, map[string]opStats, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.ops))
	out := make(map[string]opStats, len(r.ops))
	for name, s := range r.ops {
		names = append(names, name)
		out[name] = *s
	}
	errs := make(map[string]string, len(r.lastErr))
	for k, v := range r.lastErr {
		errs[k] = v
	}
	sort.Strings(names)
	return names, out, errs
}
