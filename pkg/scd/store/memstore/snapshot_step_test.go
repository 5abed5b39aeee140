package memstore

import (
	"io"
	"testing"
	"time"
)

// stepWriter records how long the snapshot encoder works between two of its
// writes or pauses: the pacing writer of the Raft node (raftstore's
// pacedWriter) may sleep at each of them as long as the work before it
// took, so the longest gap is the longest burst of CPU a snapshot takes
// without a chance to pause.
type stepWriter struct {
	last    time.Time // end of the previous Write (or the start)
	longest time.Duration
	writes  int
}

func (w *stepWriter) Write(p []byte) (int, error) {
	w.writes++
	w.Pause()
	return len(p), nil
}

func (w *stepWriter) Pause() {
	if gap := time.Since(w.last); gap > w.longest {
		w.longest = gap
	}
	w.last = time.Now()
}

// longestStep runs write (a WriteSnapshot) and returns its longest unpaced
// step, its number of writes and its total duration.
func longestStep(write func(io.Writer) error) (longest time.Duration, writes int, total time.Duration, err error) {
	start := time.Now()
	w := &stepWriter{last: start}
	err = write(w)
	if gap := time.Since(w.last); gap > w.longest {
		w.longest = gap
	}
	return w.longest, w.writes, time.Since(start), err
}

// BenchmarkSnapshotLongestStep reports the longest CPU step between two
// writes of a Frozen.WriteSnapshot of 100,000 OIRs (max-step-ms: the
// largest of all iterations; mean-step-ms: their mean), and the number of
// writes; "legacy" is the encoding that sorted everything up front.
func BenchmarkSnapshotLongestStep(b *testing.B) {
	s, _ := loadState(b, newLoadGen(), benchOIRs)
	f := s.Freeze()
	for _, bm := range []struct {
		name  string
		write func(io.Writer) error
	}{{"legacy", f.s.legacyWriteSnapshot}, {"incremental", f.WriteSnapshot}} {
		b.Run(bm.name, func(b *testing.B) {
			var worst, sum time.Duration
			writes := 0
			for range b.N {
				longest, n, _, err := longestStep(bm.write)
				if err != nil {
					b.Fatal(err)
				}
				worst = max(worst, longest)
				sum += longest
				writes = n
			}
			b.ReportMetric(float64(worst)/float64(time.Millisecond), "max-step-ms")
			b.ReportMetric(float64(sum)/float64(b.N)/float64(time.Millisecond), "mean-step-ms")
			b.ReportMetric(float64(writes), "writes")
		})
	}
}
