package cpupin

import (
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// Every thread, the ones started after the call too, ends up on the CPU.
func TestSelf(t *testing.T) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := 0; i < 1024; i++ {
		if orig.IsSet(i) {
			cpu = i
		}
	}
	// Restore every thread's CPUs for the rest of the package's tests.
	t.Cleanup(func() {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, e := range tasks {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				_ = unix.SchedSetaffinity(tid, &orig)
			}
		}
	})
	if err := Self(cpu); err != nil {
		t.Fatal(err)
	}
	// A goroutine locked to a fresh thread: Go starts one for it when the
	// others are busy or locked.
	done := make(chan unix.CPUSet)
	go func() {
		runtime.LockOSThread()
		var s unix.CPUSet
		_ = unix.SchedGetaffinity(0, &s)
		done <- s
	}()
	got := <-done
	if got.Count() != 1 || !got.IsSet(cpu) {
		t.Errorf("a thread after Self(%d) has %d CPUs, CPU %d set %v", cpu, got.Count(), cpu, got.IsSet(cpu))
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		var s unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &s); err != nil {
			continue // exited
		}
		if s.Count() != 1 || !s.IsSet(cpu) {
			t.Errorf("thread %d: %d CPUs after Self(%d)", tid, s.Count(), cpu)
		}
	}
}

func TestProcessMissing(t *testing.T) {
	if err := Process(1<<30, 0); err == nil {
		t.Fatal("a missing process: want an error")
	}
}
