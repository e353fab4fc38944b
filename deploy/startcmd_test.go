package deploy_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// startCommand runs a node container's shell command as the container
// would, on this machine: its ConfigMap files under dir/etc/filament, its
// /tmp under dir, and the binary it execs replaced by a shim that runs the
// real one (bin) with --check, so the configuration the command made is
// validated by the binary itself and nothing starts.
func startCommand(t *testing.T, c *corev1.Container, cm *corev1.ConfigMap, bin string, env ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc/filament", "tmp", "path"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(dir, "etc/filament", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shim := fmt.Sprintf("#!/bin/sh\nexec %s --check \"$@\"\n", bin)
	if err := os.WriteFile(filepath.Join(dir, "path", filepath.Base(bin)), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	if len(c.Command) != 2 || c.Command[0] != "/bin/sh" || c.Command[1] != "-c" || len(c.Args) != 1 {
		t.Fatalf("%s: command %q args %d: want /bin/sh -c and one script", c.Name, c.Command, len(c.Args))
	}
	script := strings.NewReplacer("/etc/filament/", dir+"/etc/filament/", "/tmp/", dir+"/tmp/").Replace(c.Args[0])
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append([]string{"PATH=" + filepath.Join(dir, "path") + ":/usr/bin:/bin"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestStartCommands runs the dataplane's and the agent's start commands
// (placeholders filled from the environment, the CPUs from the process's
// affinity) and validates what they make with the real binaries'
// --check; the dataplane's refuses CPUs other than its limit's (no static
// CPU manager).
func TestStartCommands(t *testing.T) {
	dir := t.TempDir()
	gobuild := exec.Command("go", "build", "-o", dir+"/",
		"github.com/filament-net/filament/dpdk/cmd/filament-dataplane",
		"github.com/filament-net/filament/agent/cmd/filament-agent")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cpus := len(affinity(t))
	for _, k := range kustomizations {
		t.Run(k, func(t *testing.T) {
			objs := build(t, k)
			dpDS := typed[appsv1.DaemonSet](t, find(objs, "DaemonSet", "filament-dataplane"))
			agDS := typed[appsv1.DaemonSet](t, find(objs, "DaemonSet", "filament-agent"))
			cm := &corev1.ConfigMap{Data: map[string]string{}} // both ConfigMaps' files
			for _, o := range objs {
				if o.GetKind() == "ConfigMap" {
					maps.Copy(cm.Data, typed[corev1.ConfigMap](t, o).Data)
				}
			}
			dp := container(t, dpDS.Spec.Template.Spec.Containers, "dataplane")
			out, err := startCommand(t, dp, cm, filepath.Join(dir, "filament-dataplane"),
				"NODE_IP=192.0.2.10", fmt.Sprintf("CPU_LIMIT=%d", cpus))
			if err != nil || !strings.Contains(out, "configuration OK") ||
				!strings.Contains(out, fmt.Sprintf("(%d forwarding lcores)", cpus-1)) {
				t.Errorf("dataplane start command: %v\n%s", err, out)
			}
			out, err = startCommand(t, dp, cm, filepath.Join(dir, "filament-dataplane"),
				"NODE_IP=192.0.2.10", fmt.Sprintf("CPU_LIMIT=%d", cpus+1))
			if err == nil || !strings.Contains(out, "--cpu-manager-policy=static") {
				t.Errorf("dataplane start command on %d CPUs with a limit of %d: %v\n%s", cpus, cpus+1, err, out)
			}
			ag := container(t, agDS.Spec.Template.Spec.Containers, "agent")
			out, err = startCommand(t, ag, cm, filepath.Join(dir, "filament-agent"), "NODE_IP=192.0.2.10", "NODE_NAME=node-a")
			if err != nil || !strings.Contains(out, ": ok") {
				t.Errorf("agent start command: %v\n%s", err, out)
			}
		})
	}
}
