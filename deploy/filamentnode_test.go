package deploy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/filament-net/filament/agent/filamentnode"
	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

// nodeNameExtra is where a pod-bound ServiceAccount token carries its
// pod's node (Kubernetes 1.30 and later).
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// agentPodConfig is the agent ServiceAccount's client configuration with
// the token kubelet would mount in an agent pod on node: bound to a Pod
// object of that node (TokenRequest's boundObjectRef), which it creates
// with the Node if missing. The test checks that the API server puts the
// node's name in the token's user (SelfSubjectReview).
func agentPodConfig(t *testing.T, ctx context.Context, admin kubernetes.Interface, node string) *rest.Config {
	t.Helper()
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	pod, err := admin.CoreV1().Pods("filament-system").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "filament-agent-"},
		Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "filament-agent",
			Containers: []corev1.Container{{Name: "agent", Image: "filament-node:dev"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts("filament-system").CreateToken(ctx, "filament-agent", &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &expiry,
			BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := rest.CopyConfig(env.Config)
	c.BearerToken = tr.Status.Token
	who, err := kubernetes.NewForConfigOrDie(c).AuthenticationV1().SelfSubjectReviews().Create(ctx,
		&authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u := who.Status.UserInfo
	if u.Username != "system:serviceaccount:filament-system:filament-agent" ||
		!reflect.DeepEqual([]string(u.Extra[nodeNameExtra]), []string{node}) {
		t.Fatalf("the pod-bound token's user %q, extra %v: want the agent's ServiceAccount and %s [%s]", u.Username, u.Extra, nodeNameExtra, node)
	}
	return c
}

// agentOwnFilamentNode: with its pod's token, the agent may create and
// update the FilamentNode of its node only (RBAC and the admission policy
// filament-agent-own-filamentnode); never delete one; a token that names
// no node (not bound to a pod) writes none.
func agentOwnFilamentNode(t *testing.T, ctx context.Context, admin kubernetes.Interface) {
	t.Helper()
	const nodeA, nodeB = "fn-node-a", "fn-node-b"
	crdAdmin, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	a, err := crdclient.New(agentPodConfig(t, ctx, admin, nodeA))
	if err != nil {
		t.Fatal(err)
	}
	nodeAObj, err := admin.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.0.2.21", Encapsulations: filamentnode.Encapsulations}
	fn := func(name string, owner *corev1.Node) *v1alpha1.FilamentNode {
		o := &v1alpha1.FilamentNode{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
		if owner != nil {
			o.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: owner.Name, UID: owner.UID}}
		}
		return o
	}

	// Its own: created, read, updated.
	got, err := a.FilamentNodes.Create(ctx, fn(nodeA, nodeAObj))
	if err != nil {
		t.Fatalf("agent of %s: create FilamentNode %s: %v", nodeA, nodeA, err)
	}
	got.Spec.UnderlayIPv4 = "192.0.2.22"
	if _, err := a.FilamentNodes.Update(ctx, got); err != nil {
		t.Errorf("agent of %s: update FilamentNode %s: %v", nodeA, nodeA, err)
	}
	// Another node's: neither created nor updated, whatever its owner.
	_, err = a.FilamentNodes.Create(ctx, fn(nodeB, nil))
	forbidden(t, "agent of "+nodeA, "create FilamentNode "+nodeB, err)
	if err != nil && !strings.Contains(err.Error(), "may write FilamentNode "+nodeA+" only") {
		t.Errorf("create FilamentNode %s: %v: want the policy's message", nodeB, err)
	}
	b, err := crdAdmin.FilamentNodes.Create(ctx, fn(nodeB, nil))
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.UnderlayIPv4 = "192.0.2.99"
	_, err = a.FilamentNodes.Update(ctx, b)
	forbidden(t, "agent of "+nodeA, "update FilamentNode "+nodeB, err)
	if back, err := crdAdmin.FilamentNodes.Get(ctx, "", nodeB); err != nil || back.Spec.UnderlayIPv4 != "192.0.2.21" {
		t.Errorf("FilamentNode %s after the refused update: %+v %v", nodeB, back, err)
	}
	// Its own, owned by another Node: refused.
	own, err := a.FilamentNodes.Get(ctx, "", nodeA)
	if err != nil {
		t.Fatal(err)
	}
	own.OwnerReferences[0].Name = nodeB
	_, err = a.FilamentNodes.Update(ctx, own)
	forbidden(t, "agent of "+nodeA, "own FilamentNode owned by Node "+nodeB, err)
	// No deletion, not even its own (kube-manager deletes a node's once
	// the Node is gone; the garbage collector, as the Node's dependent).
	forbidden(t, "agent of "+nodeA, "delete FilamentNode "+nodeA, a.FilamentNodes.Delete(ctx, "", nodeA, metav1.DeleteOptions{}))
	forbidden(t, "agent of "+nodeA, "delete FilamentNode "+nodeB, a.FilamentNodes.Delete(ctx, "", nodeB, metav1.DeleteOptions{}))

	// A token bound to no pod names no node: no write at all.
	unbound, err := crdclient.New(saConfig(t, ctx, "filament-agent"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = unbound.FilamentNodes.Create(ctx, fn("fn-node-c", nil))
	forbidden(t, "agent with an unbound token", "create a FilamentNode", err)
	own, err = unbound.FilamentNodes.Get(ctx, "", nodeA)
	if err != nil {
		t.Fatal(err)
	}
	own.Spec.UnderlayIPv4 = "192.0.2.23"
	_, err = unbound.FilamentNodes.Update(ctx, own)
	forbidden(t, "agent with an unbound token", "update FilamentNode "+nodeA, err)
}

// agentPublishes runs the real filament-agent in Kubernetes mode with the
// token of an agent pod on node (no dataplane: it publishes its
// FilamentNode without being ready): its FilamentNode appears with the
// configuration's underlay address, owned by the Node, and its metric
// says so.
func agentPublishes(t *testing.T, ctx context.Context, admin kubernetes.Interface, node string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "fdeploy-") // short: unix socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "filament-agent")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"github.com/filament-net/filament/agent/cmd/filament-agent").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`mode: kubernetes
sockets: {dataplane: %[1]s/dp.sock, cni: %[1]s/cni.sock}
state_dir: %[1]s/state
fabric: {underlay_ip: 192.0.2.31}
attach: {socket_dir: %[1]s/pods}
metrics: {listen: "%[2]s"}
`, dir, metrics)
	if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	kc := writeKubeconfig(t, agentPodConfig(t, ctx, admin, node))
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "agent.yaml"), "--mode", "kubernetes",
		"--kubeconfig", kc, "--node-name", node, "--cni-conf-dir", filepath.Join(dir, "net.d"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("agent exit: %v", err)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	}()
	n, err := admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	want := v1alpha1.FilamentNodeSpec{UnderlayIPv4: "192.0.2.31", Encapsulations: filamentnode.Encapsulations}
	poll(t, "the agent's FilamentNode "+node, 30*time.Second, func() bool {
		fn, err := crd.FilamentNodes.Get(ctx, "", node)
		return err == nil && reflect.DeepEqual(fn.Spec, want) && len(fn.OwnerReferences) == 1 &&
			fn.OwnerReferences[0].Kind == "Node" && fn.OwnerReferences[0].UID == n.UID
	})
	poll(t, "filament_agent_filamentnode_published 1", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\nfilament_agent_filamentnode_published 1\n")
	})
}
