package main

import "testing"

// /proc/stat: busy is user, nice, system, irq, softirq and steal; idle and
// iowait are not; guest time is inside user already.
func TestCPUTimes(t *testing.T) {
	stat := "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 2 3 400 5 6 7 8 90 100\ncpu1 9 9 9 9 9 9 9 9 0 0\n"
	busy, total, err := cpuTimes(stat, 0)
	if err != nil || busy != 1+2+3+6+7+8 || total != 1+2+3+400+5+6+7+8 {
		t.Fatalf("cpu0: busy %d total %d (%v)", busy, total, err)
	}
	if _, _, err := cpuTimes(stat, 2); err == nil {
		t.Fatal("cpu2 found in a stat without it")
	}
}
