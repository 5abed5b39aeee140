package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"

	"github.com/raftdss/dss/pkg/raftstore/consensus"
	"github.com/raftdss/dss/pkg/raftstore/kv"
)

func encodePut(key string, value []byte) []byte { return kv.EncodePut(key, value) }

// fill writes every key once from clients goroutines (each writing a
// strided share) and returns the first error. The goroutines end with the
// function.
func fill(ctx context.Context, n *node, clients int, keys []string, value []byte) error {
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < len(keys); i += clients {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				_, err := n.store.Transact(octx, encodePut(keys[i], value))
				cancel()
				if err != nil {
					errs[c] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// walStats summarises the consensus counters of a phase of seconds: the
// leader's, and the followers' pooled.
func walStats(c *cluster, lead *node, before, after []consensus.Stats, seconds float64) walInfo {
	var w walInfo
	var fol consensus.Stats
	for i, n := range c.nodes {
		d := after[i].Sub(before[i])
		if n == lead {
			w.LeaderEntriesPerSync = d.EntriesPerSync()
			w.LeaderSyncs = d.WALSyncs
			w.LeaderMeanSaveMs = meanMs(d)
			w.LeaderEntriesPerApply = perBatch(d.EntriesApplied, d.ApplyBatches)
			if seconds > 0 {
				w.LeaderSyncsPerSecond = float64(d.WALSyncs) / seconds
				w.LeaderReadysPerSecond = float64(d.Readys) / seconds
				w.FsyncShareOfLeaderTime = d.WALSaveTime.Seconds() / seconds
			}
			continue
		}
		fol.WALSyncs += d.WALSyncs
		fol.WALSaves += d.WALSaves
		fol.EntriesSaved += d.EntriesSaved
		fol.WALSaveTime += d.WALSaveTime
		fol.EntriesApplied += d.EntriesApplied
		fol.ApplyBatches += d.ApplyBatches
	}
	followers := float64(len(c.nodes) - 1)
	w.FollowerEntriesPerSync = fol.EntriesPerSync()
	w.FollowerMeanSaveMs = meanMs(fol)
	w.FollowerEntriesPerApply = perBatch(fol.EntriesApplied, fol.ApplyBatches)
	if seconds > 0 && followers > 0 {
		w.FollowerSyncsPerSecond = float64(fol.WALSyncs) / seconds / followers
	}
	return w
}

func meanMs(s consensus.Stats) float64 {
	if s.WALSaves == 0 {
		return 0
	}
	return s.WALSaveTime.Seconds() * 1000 / float64(s.WALSaves)
}

func perBatch(n, batches uint64) float64 {
	if batches == 0 {
		return 0
	}
	return float64(n) / float64(batches)
}

// printTable writes the human-readable report. Every line the smoke test
// looks for starts with a fixed label.
func printTable(out io.Writer, r *results) {
	fmt.Fprintf(out, "raftbench: %d nodes in-process, gRPC on loopback, real WAL fsync in %s, %d-byte values, GOMAXPROCS %d on %d CPUs, clients on the leader\n\n",
		r.Nodes, r.Dir, r.ValueBytes, r.GOMAXPROCS, r.CPUs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tclients\tops\terrors\tops/s\tp50 ms\tp99 ms\t")
	for _, p := range []phase{r.Fsync, r.RPC, r.Writes, r.Write1, r.ReadIndex, r.LogReads} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.3f\t%.3f\t\n", p.Name, p.Clients, p.Ops, p.Errors, p.PerSec, p.P50ms, p.P99ms)
	}
	_ = tw.Flush()
	for _, g := range []struct {
		name string
		w    walInfo
	}{{r.Writes.Name, r.WAL}, {r.Write1.Name, r.WAL1}} {
		w := g.w
		fmt.Fprintf(out, "\nWAL during %s:\n", g.name)
		fmt.Fprintf(out, "  leader:    %.1f entries per WAL save (fsync), %.0f saves/s, mean save %.3f ms, %.0f%% of the time in wal.Save, %.1f entries per apply, %.0f Readys/s\n",
			w.LeaderEntriesPerSync, w.LeaderSyncsPerSecond, w.LeaderMeanSaveMs, 100*w.FsyncShareOfLeaderTime, w.LeaderEntriesPerApply, w.LeaderReadysPerSecond)
		fmt.Fprintf(out, "  followers: %.1f entries per WAL save (fsync), %.0f saves/s each, mean save %.3f ms, %.1f entries per apply\n",
			w.FollowerEntriesPerSync, w.FollowerSyncsPerSecond, w.FollowerMeanSaveMs, w.FollowerEntriesPerApply)
	}
	fmt.Fprintln(out, "\nratios (same run):")
	for _, q := range r.Ratios {
		verdict := "FAIL"
		if q.Pass {
			verdict = "PASS"
		}
		op := "≥"
		if q.Op == "<=" {
			op = "≤"
		}
		fmt.Fprintf(out, "  %s %-44s %6.2f  (target %s %.1f)\n", verdict, q.Name, q.Value, op, q.Target)
	}
}
