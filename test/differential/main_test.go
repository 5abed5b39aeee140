package differential

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftdss/dss/internal/pgtest"
)

// The default run: bounded (about 10 s here with PostgreSQL's start-up);
// TestGeneratorCoverage checks what it reaches.
const (
	defaultSeeds = "1-4"
	defaultSteps = 500
)

var (
	flagSeeds = flag.String("diff.seeds", defaultSeeds,
		"seeds of TestStoresAgree: comma-separated numbers and ranges a-b")
	flagSteps   = flag.Int("diff.steps", defaultSteps, "requests per seed")
	flagTargets = flag.String("diff.targets", "mem,sql,raft",
		"targets compared, the first one being the reference the generator learns from")
	flagShrinkTime = flag.Duration("diff.shrinktime", 90*time.Second,
		"time bound of shrinking a difference (the best sequence found so far is printed)")
	flagClockBack = flag.Float64("diff.clockback", 0,
		"chance that the injected clock stands still or steps back up to 50 ms before a request")
	flagRaftNodes = flag.Int("diff.raftnodes", 3, "nodes of the Raft target")
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStoresAgree is the interoperability test: for each seed, the same
// generated request sequence on every target, identical answers required.
func TestStoresAgree(t *testing.T) {
	seeds, err := parseSeeds(*flagSeeds)
	if err != nil {
		t.Fatal(err)
	}
	kinds := strings.Split(*flagTargets, ",")
	if len(kinds) < 2 {
		t.Fatalf("-diff.targets=%q: need at least two targets to compare", *flagTargets)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			hist := map[string]int{}
			div, err := explore(t, seed, *flagSteps, kinds, *flagShrinkTime, hist)
			if err != nil {
				t.Fatal(err)
			}
			if testing.Verbose() {
				t.Logf("answers by endpoint and status:\n%s", histogram(hist))
			}
			if div != nil {
				t.Fatal(div)
			}
		})
	}
}

func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("-diff.seeds=%q: %v", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("-diff.seeds=%q: bad range %q", s, part)
			}
		}
		for x := a; x <= b; x++ {
			out = append(out, x)
		}
	}
	return out, nil
}

func histogram(h map[string]int) string {
	var b strings.Builder
	for _, k := range sortedKeys(h) {
		fmt.Fprintf(&b, "  %-22s %5d\n", k, h[k])
	}
	return b.String()
}

// divergence is a difference found, with its shrunk reproduction.
type divergence struct {
	seed     uint64
	kinds    []string     // the two targets that disagree
	found    int          // number of the request where the run first differed
	seq      []*request   // shortest reproducing sequence found
	answers  [][]response // answers of kinds to the requests of seq, if known
	last     []response   // answers of kinds to the last request of seq
	stats    shrinkStats
	shrinkEr error // shrinking failed: seq is the unshrunk prefix
}

func (d *divergence) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %s and %s answer request #%d differently.\n", d.seed, d.kinds[0], d.kinds[1], d.found)
	if d.shrinkEr != nil {
		fmt.Fprintf(&b, "Shrinking failed (%v); the whole sequence follows.\n", d.shrinkEr)
	} else {
		timedOut := ""
		if d.stats.timedOut {
			timedOut = ", shrinking timed out: -diff.shrinktime"
		}
		fmt.Fprintf(&b, "Shortest reproducing sequence found: %d of %d requests (%d replays in %v%s), each from empty stores:\n",
			d.stats.to, d.stats.from, d.stats.replays, d.stats.elapsed.Round(time.Millisecond), timedOut)
	}
	for i, rq := range d.seq {
		fmt.Fprintf(&b, "  %s\n", rq)
		if i < len(d.answers) && i < len(d.seq)-1 {
			a := d.answers[i][0]
			fmt.Fprintf(&b, "      -> %d %s\n", a.Status, clip(a.Body, 240))
		}
	}
	for j, k := range d.kinds {
		a := d.last[j]
		fmt.Fprintf(&b, "      %-4s -> %d %q %s\n", k, a.Status, a.CType, a.Body)
	}
	fmt.Fprintf(&b, "The full run: go test ./test/differential -run 'TestStoresAgree' -diff.seeds=%d -diff.steps=%d -diff.targets=%s",
		d.seed, d.found, strings.Join(d.kinds, ","))
	if *flagClockBack > 0 {
		fmt.Fprintf(&b, " -diff.clockback=%v", *flagClockBack)
	}
	return b.String()
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// explore generates and sends seed's sequence to fresh targets of kinds,
// learning from the first target's answers; on the first difference it
// shrinks the sequence on the first target and the one that disagrees.
// hist, when not nil, counts answers by endpoint and status.
func explore(tb testing.TB, seed uint64, steps int, kinds []string, budget time.Duration, hist map[string]int) (*divergence, error) {
	r, err := openRun(tb, kinds)
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			r.close()
		}
	}()
	g := newGenerator(seed)
	var seq []*request
	for range steps {
		rq := g.next()
		seq = append(seq, rq)
		out, same := r.serve(rq)
		if hist != nil {
			hist[fmt.Sprintf("%s %d", rq.Endpoint, out[0].Status)]++
		}
		if same {
			g.learn(rq, out[0])
			continue
		}
		r.close() // free the machine for shrinking
		closed = true
		j := slices.IndexFunc(out, func(a response) bool { return a != out[0] })
		d := &divergence{seed: seed, kinds: []string{kinds[0], kinds[j]}, found: rq.Seq}
		small, last, st, err := shrink(tb, d.kinds, seq, budget)
		d.stats = st
		if err != nil {
			// Not reproducible from scratch: show the run as it happened.
			d.shrinkEr, d.seq, d.last = err, seq, []response{out[0], out[j]}
			return d, nil
		}
		d.seq, d.last = small, last
		// Replay the result once more for the answers along the way.
		d.answers, _ = answersTo(tb, d.kinds, small)
		return d, nil
	}
	return nil, nil
}

// answersTo replays seq on fresh targets and returns every answer.
func answersTo(tb testing.TB, kinds []string, seq []*request) ([][]response, error) {
	r, err := openRun(tb, kinds)
	if err != nil {
		return nil, err
	}
	defer r.close()
	var all [][]response
	for _, rq := range seq {
		out, _ := r.serve(rq)
		all = append(all, out)
	}
	return all, nil
}
