package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/filament-net/filament/kubemanager/apis/v1alpha1"
	"github.com/filament-net/filament/kubemanager/crdclient"
)

const testNode = "node-a"

// saConfig is the ServiceAccount's client configuration, with a token from
// the TokenRequest API as its pod would have.
func saConfig(t *testing.T, ctx context.Context, name string) *rest.Config {
	t.Helper()
	c, err := env.ServiceAccountConfig(ctx, "filament-system", name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeKubeconfig(t *testing.T, c *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	kc.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: c.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "sa"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// forbidden fails the test unless err is the API server's 403.
func forbidden(t *testing.T, who, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("%s: %s: want Forbidden, got %v", who, what, err)
	}
}

// kubeManagerMakesPort runs the real filament-kube-manager with the
// Deployment's arguments and the kube-manager ServiceAccount's token: a
// scheduled Pod gets its Port. Its forbidden verbs are refused. It returns
// the Port.
func kubeManagerMakesPort(t *testing.T, ctx context.Context, admin kubernetes.Interface) *v1alpha1.Port {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "filament-kube-manager")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin,
		"github.com/filament-net/filament/kubemanager/cmd/filament-kube-manager").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	d, err := admin.AppsV1().Deployments("filament-system").Get(ctx, "filament-kube-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := deploymentArgs(t, d, "km-0")
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sa := saConfig(t, ctx, d.Spec.Template.Spec.ServiceAccountName)
	// The last flag wins: the test's API server and a free port.
	args = append(args, "--kubeconfig", writeKubeconfig(t, sa), "--listen", listen)
	logPath := filepath.Join(dir, "kube-manager.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("kube-manager exit: %v", err)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("kube-manager log:\n%s", b)
		}
	}()

	ns := "deploy-test"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	var p *v1alpha1.Port
	poll(t, "the pod's Port, Allocated", 30*time.Second, func() bool {
		p, err = crd.Ports.Get(ctx, ns, "web-eth0")
		return err == nil && meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionAllocated)
	})
	if p.Spec.Node != testNode || len(p.Spec.IPs) != 1 || !strings.HasPrefix(p.Spec.IPs[0], "10.244.") || p.Spec.Network != "default" {
		t.Errorf("Port spec %+v: want node %s, one address of 10.244.0.0/16, network default", p.Spec, testNode)
	}
	lease, err := admin.CoordinationV1().Leases("filament-system").Get(ctx, "filament-kube-manager", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "km-0" {
		t.Errorf("Lease filament-system/filament-kube-manager: %+v %v: want held by km-0", lease, err)
	}
	resp, err := http.Get("http://" + listen + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}

	// Not broader than needed.
	km := kubernetes.NewForConfigOrDie(sa)
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}},
		metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	forbidden(t, "kube-manager", "delete node", km.CoreV1().Nodes().Delete(ctx, testNode, metav1.DeleteOptions{}))
	_, err = km.CoreV1().Secrets("filament-system").List(ctx, metav1.ListOptions{})
	forbidden(t, "kube-manager", "list secrets", err)
	_, err = km.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
	forbidden(t, "kube-manager", "create pod", err)
	_, err = km.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	forbidden(t, "kube-manager", "list configmaps outside its namespace", err)
	return p
}

// deploymentArgs is the kube-manager container's arguments with the
// downward API's variables expanded as kubelet does.
func deploymentArgs(t *testing.T, d *appsv1.Deployment, pod string) []string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	vars := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			t.Fatalf("env %s: want the downward API", e.Name)
		}
		switch e.ValueFrom.FieldRef.FieldPath {
		case "metadata.name":
			vars[e.Name] = pod
		case "metadata.namespace":
			vars[e.Name] = d.Namespace
		default:
			t.Fatalf("env %s: field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
		}
	}
	var args []string
	for _, a := range c.Args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		args = append(args, a)
	}
	return args
}

// agentRights: the agent's ServiceAccount lists and watches what
// agent/kubesource does, reads a Port and writes its status; nothing else.
func agentRights(t *testing.T, ctx context.Context, admin kubernetes.Interface, p *v1alpha1.Port) {
	t.Helper()
	sa := saConfig(t, ctx, "filament-agent")
	ag, err := crdclient.New(sa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ag.VirtualNetworks.List(ctx, "", metav1.ListOptions{}); err != nil {
		t.Errorf("agent: list virtualnetworks: %v", err)
	}
	if _, err := ag.FilamentNodes.List(ctx, "", metav1.ListOptions{}); err != nil {
		t.Errorf("agent: list filamentnodes: %v", err)
	}
	for what, w := range map[string]func() (watch.Interface, error){
		"virtualnetworks": func() (watch.Interface, error) { return ag.VirtualNetworks.Watch(ctx, "", metav1.ListOptions{}) },
		"filamentnodes":   func() (watch.Interface, error) { return ag.FilamentNodes.Watch(ctx, "", metav1.ListOptions{}) },
	} {
		wi, err := w()
		if err != nil {
			t.Errorf("agent: watch %s: %v", what, err)
			continue
		}
		wi.Stop()
	}
	// Its node's Ports, as the agent watches them: the Port arrives.
	l, err := ag.Ports.List(ctx, "", metav1.ListOptions{FieldSelector: "spec.node=" + testNode})
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("agent: list its node's ports: %v %v", l, err)
	}
	wi, err := ag.Ports.Watch(ctx, "", metav1.ListOptions{FieldSelector: "spec.node=" + testNode, ResourceVersion: "0"})
	if err != nil {
		t.Fatalf("agent: watch ports: %v", err)
	}
	select {
	case ev := <-wi.ResultChan():
		if pe, ok := ev.Object.(*v1alpha1.Port); ev.Type != watch.Added || !ok || pe.Name != p.Name {
			t.Errorf("agent: watch ports: %v %v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("agent: watch ports: no event in 10 s")
	}
	wi.Stop()
	got, err := ag.Ports.Get(ctx, p.Namespace, p.Name)
	if err != nil {
		t.Fatalf("agent: get port: %v", err)
	}
	meta.SetStatusCondition(&got.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionProgrammed,
		Status: metav1.ConditionTrue, Reason: "Attached", Message: "deploy test"})
	if _, err := ag.Ports.UpdateStatus(ctx, got); err != nil {
		t.Errorf("agent: update ports/status: %v", err)
	}
	crd, err := crdclient.New(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := crd.Ports.Get(ctx, p.Namespace, p.Name); err != nil ||
		!meta.IsStatusConditionTrue(back.Status.Conditions, v1alpha1.ConditionProgrammed) {
		t.Errorf("the agent's status write is not stored: %v", err)
	}

	// The Service and NetworkPolicy records: read, never written.
	if _, err := ag.ServiceRecords.List(ctx, "", metav1.ListOptions{}); err != nil {
		t.Errorf("agent: list servicerecords: %v", err)
	}
	if _, err := ag.PolicyRecords.List(ctx, "", metav1.ListOptions{}); err != nil {
		t.Errorf("agent: list policyrecords: %v", err)
	}
	forbidden(t, "agent", "delete servicerecords", ag.ServiceRecords.Delete(ctx, p.Namespace, "any", metav1.DeleteOptions{}))

	// Nothing more: no Port spec, no creation or deletion, no Secrets
	// (its FilamentNode: agentOwnFilamentNode).
	got, err = ag.Ports.Get(ctx, p.Namespace, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	got.Spec.Interface = "eth1"
	_, err = ag.Ports.Update(ctx, got)
	forbidden(t, "agent", "update a port's spec", err)
	fresh := &v1alpha1.Port{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: "other-eth0"}, Spec: p.Spec}
	_, err = ag.Ports.Create(ctx, fresh)
	forbidden(t, "agent", "create a port", err)
	forbidden(t, "agent", "delete a port", ag.Ports.Delete(ctx, p.Namespace, p.Name, metav1.DeleteOptions{}))
	k := kubernetes.NewForConfigOrDie(sa)
	_, err = k.CoreV1().Secrets("filament-system").List(ctx, metav1.ListOptions{})
	forbidden(t, "agent", "list secrets", err)
	_, err = k.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	forbidden(t, "agent", "list pods", err)
	_, err = k.CoreV1().ConfigMaps("filament-system").Get(ctx, "anything", metav1.GetOptions{})
	forbidden(t, "agent", "get a configmap", err)
}
