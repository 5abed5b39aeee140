package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets (the HDR histogram
// layout): values below 2^subBits ns are exact, and every power-of-two range
// above is split into 2^subBits equal buckets, so a reported percentile is
// within 1/2^subBits (1.6 %) of the true sample, whatever the scale, in a
// fixed 30 KiB and O(1) per record. It is not safe for concurrent use: the
// recorder guards it.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
	sum    time.Duration
}

const (
	subBits    = 6
	subCount   = 1 << subBits // buckets per power of two
	numBuckets = subCount + (64-subBits-1)*subCount
)

// bucketOf maps a value in nanoseconds to its bucket index.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	// shift puts v>>shift in [subCount, 2*subCount).
	shift := bits.Len64(v) - subBits - 1
	return subCount + shift*subCount + int(v>>uint(shift)) - subCount
}

// bucketUpper is the largest value (ns) that falls in bucket i: reporting
// the upper bound never understates a latency.
func bucketUpper(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i - subCount) / subCount
	sub := uint64((i-subCount)%subCount + subCount)
	return (sub+1)<<uint(shift) - 1
}

// record adds one sample; negative durations (a clock step) count as 0.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// quantile returns the q-quantile (0 < q ≤ 1) by the nearest-rank method:
// the smallest recorded bucket such that at least ceil(q·n) samples are at
// or below it, reported as that bucket's upper bound clamped to [min, max].
// It returns 0 when the histogram is empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(bucketUpper(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// mean is the exact arithmetic mean of the samples.
func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
