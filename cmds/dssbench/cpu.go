package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// With --target_pids, every measured phase reads the CPU time (user +
// system) that the servers under test and dssbench itself used over its
// window, so that the output shows the CPU each design spends per
// successful operation: on a CPU-saturated machine, the ratio of two
// targets' throughputs cannot exceed the inverse ratio of their CPU per
// operation.

// clockTicks is the unit of the CPU times in /proc/<pid>/stat: the
// kernel's USER_HZ (`getconf CLK_TCK`). Reading it needs sysconf (cgo); it
// is 100 on every architecture Go supports Linux on (only alpha and ia64
// differ), so it is assumed.
const clockTicks = 100

// procStat is the part of a /proc/<pid>/stat line that dssbench uses.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime + cutime + cstime, in clockTicks
}

// parseStat parses a /proc/<pid>/stat line. Field 2, the command name, is
// in parentheses and may itself hold spaces and ')', so the fields are
// counted from the last ')'.
func parseStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' closing the command name")
	}
	f := strings.Fields(line[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	var st procStat
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("ppid: %w", err)
	}
	for _, s := range f[11:15] { // fields 14-17: utime, stime, cutime, cstime
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("CPU time: %w", err)
		}
		st.ticks += n
	}
	return st, nil
}

// treeCPU is the CPU time used so far by the processes pids and all their
// descendants, read from the proc file system mounted at proc. A process
// counts its own time and, through cutime and cstime, that of the children
// it has waited for: PostgreSQL backends that start or exit during a phase
// count too (given the postmaster's PID). A PID absent from proc is an
// error.
func treeCPU(proc string, pids []int) (time.Duration, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "stat"))
		if err != nil {
			continue // exited since the listing
		}
		st, err := parseStat(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s/%d/stat: %w", proc, pid, err)
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var ticks int64
	seen := map[int]bool{}
	var add func(pid int)
	add = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		ticks += stats[pid].ticks
		for _, c := range children[pid] {
			add(c)
		}
	}
	for _, pid := range pids {
		if _, ok := stats[pid]; !ok {
			return 0, fmt.Errorf("process %d not found in %s (exited?)", pid, proc)
		}
		add(pid)
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuMeter samples the CPU time of the targets' processes and of dssbench.
type cpuMeter struct {
	proc string // where the proc file system is mounted: "/proc"
	pids []int
}

// cpuUse is CPU time, used so far (a sample) or over a phase's window. A
// negative part was not measured; err says why.
type cpuUse struct {
	target, bench time.Duration
	err           error
}

func (m *cpuMeter) sample() cpuUse {
	var u cpuUse
	var err error
	if u.target, err = treeCPU(m.proc, m.pids); err != nil {
		u.target, u.err = -1, fmt.Errorf("--target_pids: %w", err)
	}
	if u.bench, err = selfCPU(); err != nil {
		u.bench, u.err = -1, errors.Join(u.err, fmt.Errorf("dssbench's own CPU time: %w", err))
	}
	return u
}

// since is the CPU time used from start to u.
func (u cpuUse) since(start cpuUse) cpuUse {
	d := cpuUse{target: u.target - start.target, bench: u.bench - start.bench, err: start.err}
	if d.err == nil {
		d.err = u.err
	}
	if u.target < 0 || start.target < 0 {
		d.target = -1
	}
	if u.bench < 0 || start.bench < 0 {
		d.bench = -1
	}
	return d
}
