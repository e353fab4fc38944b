// Package cpupin moves every thread of a process onto one CPU: a benchmark
// keeps each side's control threads (Go runtime, EAL interrupt and
// telemetry threads) on that side's own CPU, off the other side's.
package cpupin

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Process pins every thread of process pid to cpu. Threads it starts later
// inherit their creator's CPU, so they stay there too. A thread that exits
// meanwhile is skipped.
func Process(pid, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("pin the threads of process %d to CPU %d: %w", pid, cpu, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin thread %d of process %d to CPU %d: %w", tid, pid, cpu, err)
		}
	}
	return nil
}

// Self pins every thread of this process to cpu.
func Self(cpu int) error { return Process(os.Getpid(), cpu) }
