package dataplanev1

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates the Go code from dataplane.proto
// into a temporary directory and compares it with the committed files,
// when the pinned tools are installed (make generate installs them) and
// match the versions the committed files name; otherwise it skips.
// `make check-generate` is the full check.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	root, err := filepath.Abs("../../../..")
	if err != nil {
		t.Fatal(err)
	}
	tools := filepath.Join(root, "bin", "tools")
	pbgo, err := os.ReadFile("dataplane.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	grpcgo, err := os.ReadFile("dataplane_grpc.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	version := func(re string, src []byte) string {
		m := regexp.MustCompile(re).FindSubmatch(src)
		if m == nil {
			t.Fatalf("no version matching %q in the generated code", re)
		}
		return string(m[1])
	}
	want := map[string]string{
		"protoc":                                   "libprotoc " + version(`(?m)^//\s+protoc\s+v(\S+)$`, pbgo),
		filepath.Join(tools, "protoc-gen-go"):      "protoc-gen-go " + version(`(?m)^//\s+protoc-gen-go (v\S+)$`, pbgo),
		filepath.Join(tools, "protoc-gen-go-grpc"): "protoc-gen-go-grpc " + version(`(?m)^// - protoc-gen-go-grpc v(\S+)$`, grpcgo),
	}
	for bin, v := range want {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || string(bytes.TrimSpace(out)) != v {
			t.Skipf("%s is not %q (%q, %v): run make generate to install the pinned tools", bin, v, bytes.TrimSpace(out), err)
		}
	}
	tmp := t.TempDir()
	cmd := exec.Command("protoc", "-I", ".",
		"--plugin=protoc-gen-go="+filepath.Join(tools, "protoc-gen-go"),
		"--plugin=protoc-gen-go-grpc="+filepath.Join(tools, "protoc-gen-go-grpc"),
		"--go_out="+tmp, "--go_opt=paths=source_relative",
		"--go-grpc_out="+tmp, "--go-grpc_opt=paths=source_relative",
		"dpdk/api/dataplane/v1/dataplane.proto")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	for name, committed := range map[string][]byte{"dataplane.pb.go": pbgo, "dataplane_grpc.pb.go": grpcgo} {
		got, err := os.ReadFile(filepath.Join(tmp, "dpdk/api/dataplane/v1", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, committed) {
			t.Errorf("%s is not what dataplane.proto generates: run make generate", name)
		}
	}
}
