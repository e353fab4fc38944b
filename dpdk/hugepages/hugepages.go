// Package hugepages tells DPDK launchers what memory the machine offers:
// free hugepages and a hugetlbfs mount, or --no-huge. It is plain Go, so
// commands that only start DPDK processes need not link DPDK.
package hugepages

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Free reports free hugepages (any size) from /proc/meminfo and whether a
// hugetlbfs is mounted for DPDK to use.
func Free() (free int, mounted bool) {
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "HugePages_Free:" {
				free, _ = strconv.Atoi(f[1])
			}
		}
	}
	if b, err := os.ReadFile("/proc/mounts"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[2] == "hugetlbfs" {
				mounted = true
			}
		}
	}
	return free, mounted
}

// EALArgs are the EAL memory arguments a launcher should pass: private
// hugepage memory when there is some, else anonymous memory of mb MiB with
// --no-huge (slower, and no memif/vhost-user). The choice is the caller's to
// make and log; DPDK processes never fall back by themselves.
func EALArgs(mb int) (args []string, huge bool) {
	if free, mounted := Free(); free > 0 && mounted {
		return []string{"--in-memory"}, true
	}
	return []string{"--no-huge", "-m", strconv.Itoa(mb)}, false
}

// Check refuses EAL arguments that would need hugepages on a machine without
// them, with a message that says what to do.
func Check(eal []string) error {
	if slices.Contains(eal, "--no-huge") {
		return nil
	}
	free, mounted := Free()
	switch {
	case !mounted:
		return fmt.Errorf("no hugetlbfs mounted and --no-huge not given: " +
			"set up hugepages (scripts/hugepages.sh, as root) or pass --no-huge -m <MiB>")
	case free == 0:
		return fmt.Errorf("no free hugepages (HugePages_Free is 0) and --no-huge not given: " +
			"raise /proc/sys/vm/nr_hugepages or pass --no-huge -m <MiB>")
	}
	return nil
}
