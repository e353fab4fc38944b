// Package deploy_test builds every kustomization of deploy/ with the
// kustomize library (no kustomize binary, no network), checks what the
// node and kube-manager manifests promise, applies each overlay to a real
// kube-apiserver (server-side apply, dry-run then real), and proves each
// component's RBAC with the ServiceAccount token it would have in its pod:
// kube-manager (the real binary, run with the Deployment's arguments)
// turns a Pod into a Port, the agent's verbs work, and a verb neither has
// is refused; with the token of a pod on a node, the agent writes that
// node's FilamentNode and no other (the admission policy), as the real
// agent does.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	agentconfig "github.com/filament-net/filament/agent/config"
	"github.com/filament-net/filament/deploy/crds"
	dpconfig "github.com/filament-net/filament/dpdk/config"
	"github.com/filament-net/filament/internal/kubetest"
)

// kustomizations are the directories a user applies (kubectl apply -k).
var kustomizations = []string{"base", "overlays/af-xdp", "overlays/vfio-pci"}

// One API server for the package.
var env *kubetest.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	// A cluster's API server allows privileged containers (kubeadm's does);
	// the bare one refuses them by default.
	env, err = kubetest.Start(ctx, kubetest.Options{APIServerArgs: []string{"--allow-privileged=true"}})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy:", err)
		os.Exit(1)
	}
	rc := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "deploy: stop:", err)
		rc = 1
	}
	os.Exit(rc)
}

// build runs kustomize on dir as kubectl apply -k would (root-only file
// loading: a kustomization reaches outside its directory only through
// other kustomizations).
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			return o
		}
	}
	return nil
}

func ids(objs []*unstructured.Unstructured) []string {
	var s []string
	for _, o := range objs {
		id := o.GetKind() + "/" + o.GetName()
		if o.GetNamespace() != "" {
			id = o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		}
		s = append(s, id)
	}
	sort.Strings(s)
	return s
}

// normal is an object as JSON decodes it (kustomize's integers are int,
// sigs.k8s.io/yaml's int64 or float64).
func normal(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	b, err := json.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBuild: every kustomization builds to the same set of objects, in
// filament-system, with the CRDs exactly deploy/crds' files (a CRD file
// missing from deploy/crds/kustomization.yaml fails here).
func TestBuild(t *testing.T) {
	want := []string{
		"ClusterRole/filament-agent", "ClusterRole/filament-kube-manager",
		"ClusterRoleBinding/filament-agent", "ClusterRoleBinding/filament-kube-manager",
		"CustomResourceDefinition/filamentnodes.filament.dev", "CustomResourceDefinition/policyrecords.filament.dev",
		"CustomResourceDefinition/ports.filament.dev", "CustomResourceDefinition/servicerecords.filament.dev",
		"CustomResourceDefinition/virtualnetworks.filament.dev",
		"DaemonSet/filament-system/filament-agent", "DaemonSet/filament-system/filament-dataplane",
		"Deployment/filament-system/filament-kube-manager",
		"Namespace/filament-system",
		"Role/filament-system/filament-kube-manager", "RoleBinding/filament-system/filament-kube-manager",
		"ServiceAccount/filament-system/filament-agent", "ServiceAccount/filament-system/kube-manager",
		"ValidatingAdmissionPolicy/filament-agent-own-filamentnode",
		"ValidatingAdmissionPolicyBinding/filament-agent-own-filamentnode",
	}
	files, err := crds.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			got := ids(objs)
			// The ConfigMaps' names carry a hash of their content.
			for _, cm := range []string{"filament-dataplane", "filament-agent"} {
				i := slices.IndexFunc(got, func(id string) bool {
					return strings.HasPrefix(id, "ConfigMap/filament-system/"+cm+"-")
				})
				if i < 0 {
					t.Errorf("no ConfigMap %s-<hash> in %v", cm, got)
					continue
				}
				got = slices.Delete(got, i, i+1)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("objects:\n got %v\nwant %v", got, want)
			}
			for file, crd := range files {
				o := find(objs, "CustomResourceDefinition", crd.GetName())
				if o == nil || !reflect.DeepEqual(normal(t, o), normal(t, crd)) {
					t.Errorf("CRD %s: not deploy/crds/%s as it is", crd.GetName(), file)
				}
			}
		})
	}
}

// typed converts an object of the build to its API type.
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	if o == nil {
		t.Fatalf("missing %T", new(T))
	}
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func container(t *testing.T, cs []corev1.Container, name string) *corev1.Container {
	t.Helper()
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	t.Fatalf("no container %s", name)
	return nil
}

// nodeConfig is the file of the node's ConfigMaps (filament-dataplane-<hash>,
// filament-agent-<hash>) with the placeholders replaced as the
// containers' start commands do.
func nodeConfig(t *testing.T, objs []*unstructured.Unstructured, file, cpus string) []byte {
	t.Helper()
	var data string
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" {
			if d := typed[corev1.ConfigMap](t, o).Data[file]; d != "" {
				data = d
			}
		}
	}
	if data == "" {
		t.Fatalf("no ConfigMap has %s", file)
	}
	s := strings.ReplaceAll(data, "${NODE_IP}", "192.0.2.10")
	return []byte(strings.ReplaceAll(s, "${CPUS}", cpus))
}

// cpuList is this process's CPUs as /proc/self/status lists them ("0-1").
func cpuList(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
	return ""
}

// affinity is this process's CPUs.
func affinity(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for i := range 1024 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// TestNodeManifests: what the two node DaemonSets and the configuration
// promise (docs/operations.md, "Manifests (deploy/)"), in every
// kustomization: the dataplane's restarts only when the operator deletes
// its pod (OnDelete), the agent's rolls; only the dataplane has
// hugepages; both share the host's /run/filament.
func TestNodeManifests(t *testing.T) {
	cpus := cpuList(t)           // as the dataplane container's command reads them
	fabric := map[string]string{ // the fabric port's devargs in each
		"base":              "net_af_packet0,iface=eth0,qpairs=1",
		"overlays/af-xdp":   "net_af_xdp0,iface=eth0,start_queue=0,queue_count=1",
		"overlays/vfio-pci": "0000:03:00.0",
	}
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			dpDS := typed[appsv1.DaemonSet](t, find(objs, "DaemonSet", "filament-dataplane"))
			agDS := typed[appsv1.DaemonSet](t, find(objs, "DaemonSet", "filament-agent"))
			if s := dpDS.Spec.UpdateStrategy; s.Type != appsv1.OnDeleteDaemonSetStrategyType {
				t.Errorf("dataplane DaemonSet update strategy %+v: want OnDelete", s)
			}
			if s := agDS.Spec.UpdateStrategy; (s.Type != "" && s.Type != appsv1.RollingUpdateDaemonSetStrategyType) ||
				s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil ||
				s.RollingUpdate.MaxUnavailable.String() != "1" {
				t.Errorf("agent DaemonSet update strategy %+v: want RollingUpdate, maxUnavailable 1", s)
			}
			dpPod, agPod := dpDS.Spec.Template.Spec, agDS.Spec.Template.Spec
			if !dpPod.HostNetwork || !agPod.HostNetwork || agPod.ServiceAccountName != "filament-agent" {
				t.Errorf("hostNetwork %v and %v, agent serviceAccountName %q", dpPod.HostNetwork, agPod.HostNetwork, agPod.ServiceAccountName)
			}
			if a := dpPod.AutomountServiceAccountToken; a == nil || *a {
				t.Errorf("dataplane: automountServiceAccountToken %v: want false (it never calls the API server)", a)
			}
			// Guaranteed QoS: every container's requests equal its limits.
			for _, c := range slices.Concat(dpPod.InitContainers, dpPod.Containers, agPod.InitContainers, agPod.Containers) {
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
					if req.IsZero() || req.Cmp(lim) != 0 {
						t.Errorf("%s: %s request %v limit %v: want equal (Guaranteed QoS)", c.Name, r, req.String(), lim.String())
					}
				}
				if c.Image != "filament-node:dev" {
					t.Errorf("%s: image %q", c.Name, c.Image)
				}
			}
			if len(dpPod.Containers) != 1 || len(agPod.Containers) != 1 {
				t.Errorf("containers: dataplane pod %d, agent pod %d: want one each", len(dpPod.Containers), len(agPod.Containers))
			}
			dp := container(t, dpPod.Containers, "dataplane")
			cpu, huge := dp.Resources.Limits[corev1.ResourceCPU], dp.Resources.Limits["hugepages-2Mi"]
			if cpu.MilliValue()%1000 != 0 || cpu.Value() < 2 {
				t.Errorf("dataplane CPUs %v: want an integer >= 2 (static CPU manager)", cpu.String())
			}
			if req := dp.Resources.Requests["hugepages-2Mi"]; huge.IsZero() || req.Cmp(huge) != 0 {
				t.Errorf("dataplane hugepages-2Mi request %v limit %v: want equal", req.String(), huge.String())
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range dp.VolumeMounts {
				mounts[m.MountPath] = m
			}
			for _, p := range []string{"/dev/hugepages", "/run/filament", "/etc/filament/dataplane.yaml"} {
				if _, ok := mounts[p]; !ok {
					t.Errorf("dataplane: nothing mounted at %s", p)
				}
			}
			if dp.StartupProbe == nil || dp.LivenessProbe == nil || dp.ReadinessProbe == nil {
				t.Errorf("dataplane: startup, liveness and readiness probes wanted")
			}
			vfio := dir == "overlays/vfio-pci"
			if priv := dp.SecurityContext.Privileged != nil && *dp.SecurityContext.Privileged; priv != vfio {
				t.Errorf("dataplane privileged %v: want it only with vfio-pci", priv)
			}
			if _, ok := mounts["/dev/vfio"]; ok != vfio {
				t.Errorf("dataplane /dev/vfio mounted %v: want it only with vfio-pci", ok)
			}

			ag := container(t, agPod.Containers, "agent")
			if args := strings.Join(ag.Args, " "); !strings.Contains(args, "--mode kubernetes") ||
				!strings.Contains(args, "--cni-conf-keep-on-exit") {
				t.Errorf("agent args %q: want --mode kubernetes and --cni-conf-keep-on-exit (an upgrade hands the CNI configuration over)", ag.Args)
			}
			var nodeName bool
			for _, e := range ag.Env {
				nodeName = nodeName || e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
					e.ValueFrom.FieldRef.FieldPath == "spec.nodeName"
			}
			if !nodeName {
				t.Errorf("agent: NODE_NAME not from the downward API's spec.nodeName")
			}
			for _, c := range slices.Concat(agPod.InitContainers, agPod.Containers) {
				for r := range c.Resources.Limits {
					if strings.HasPrefix(string(r), corev1.ResourceHugePagesPrefix) {
						t.Errorf("agent pod: %s has %s: hugepages are the dataplane's only", c.Name, r)
					}
				}
			}
			for _, v := range agPod.Volumes {
				if v.EmptyDir != nil && strings.HasPrefix(string(v.EmptyDir.Medium), "HugePages") {
					t.Errorf("agent pod: volume %s on hugepages", v.Name)
				}
			}
			agMounts := map[string]corev1.VolumeMount{}
			for _, m := range ag.VolumeMounts {
				agMounts[m.MountPath] = m
			}
			for _, p := range []string{"/etc/cni/net.d", "/run/filament", "/var/run/netns", "/var/lib/filament"} {
				if _, ok := agMounts[p]; !ok {
					t.Errorf("agent: nothing mounted at %s", p)
				}
			}
			if m := agMounts["/var/run/netns"]; m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
				t.Errorf("agent: /var/run/netns propagation %v, want Bidirectional", m.MountPropagation)
			}
			// The sockets meet on the host: the same host path in both pods.
			if dh, ah := hostPath(dpPod, mounts["/run/filament"]), hostPath(agPod, agMounts["/run/filament"]); dh != "/run/filament" || ah != dh {
				t.Errorf("/run/filament: the dataplane's from host path %q, the agent's from %q: want both /run/filament", dh, ah)
			}
			if ag.LivenessProbe == nil || ag.ReadinessProbe == nil || ag.ReadinessProbe.HTTPGet == nil ||
				ag.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("agent: liveness and a /readyz readiness probe wanted")
			}
			install := container(t, agPod.InitContainers, "install-cni")
			if !strings.Contains(strings.Join(install.Args, " "), "/host/opt/cni/bin/filament-cni") {
				t.Errorf("install-cni args %q", install.Args)
			}

			// The configurations, placeholders replaced, pass the binaries'
			// own validation.
			ac, err := agentconfig.Parse(nodeConfig(t, objs, "agent.yaml", cpus), func(c *agentconfig.Config) { c.Node = "node-a" })
			if err != nil {
				t.Errorf("agent.yaml: %v", err)
			} else if ac.Mode != agentconfig.ModeKubernetes || ac.Sockets.CNI != "/run/filament/cni.sock" {
				t.Errorf("agent.yaml: mode %q, CNI socket %q", ac.Mode, ac.Sockets.CNI)
			}
			dc, err := dpconfig.Parse(nodeConfig(t, objs, "dataplane.yaml", cpus))
			if err != nil {
				t.Fatalf("dataplane.yaml: %v", err)
			}
			if len(dc.Ports) != 1 || dc.Ports[0].Devargs != fabric[dir] || dc.Ports[0].Kind != "fabric" {
				t.Errorf("dataplane.yaml ports %+v: want the fabric on %s", dc.Ports, fabric[dir])
			}
			if dc.API.Socket != ac.Sockets.Dataplane {
				t.Errorf("dataplane socket %q, the agent's %q", dc.API.Socket, ac.Sockets.Dataplane)
			}
			if vfio {
				bind := container(t, dpPod.InitContainers, "bind-vfio")
				var pci string
				for _, e := range bind.Env {
					if e.Name == "FABRIC_PCI" {
						pci = e.Value
					}
				}
				if pci != fabric[dir] || !reflect.DeepEqual(dc.EAL.Extra, []string{"-a", pci}) {
					t.Errorf("bind-vfio FABRIC_PCI %q, EAL extra %q: want the fabric's %s", pci, dc.EAL.Extra, fabric[dir])
				}
			}
		})
	}
}

// hostPath is the host path of the pod's volume that m mounts ("" if none).
func hostPath(pod corev1.PodSpec, m corev1.VolumeMount) string {
	for _, v := range pod.Volumes {
		if v.Name == m.Name && v.HostPath != nil {
			return v.HostPath.Path
		}
	}
	return ""
}

// applier applies objects server-side as the admin.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dynamic.NewForConfigOrDie(env.Config),
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured, dryRun bool) error {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
	}
	var r dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		r = a.dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	body, err := o.MarshalJSON()
	if err != nil {
		return err
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: "filament-deploy-test", Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := r.Patch(ctx, o.GetName(), types.ApplyPatchType, body, opts); err != nil {
		return fmt.Errorf("apply %s %s/%s (dry-run %v): %w", gvk.Kind, o.GetNamespace(), o.GetName(), dryRun, err)
	}
	return nil
}

// applyAll applies a build as kubectl apply --server-side would, in
// steps: the Namespace and the CRDs first (dry-run, then real), the CRDs
// established, then everything else dry-run, then real.
func applyAll(t *testing.T, ctx context.Context, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	var first, rest []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition" {
			first = append(first, o)
		} else {
			rest = append(rest, o)
		}
	}
	for _, group := range [][]*unstructured.Unstructured{first, rest} {
		for _, dry := range []bool{true, false} {
			for _, o := range group {
				if err := a.apply(ctx, o, dry); err != nil {
					t.Fatal(err)
				}
			}
		}
		if len(group) > 0 && group[0] == first[0] {
			waitEstablished(t, ctx, a, first)
		}
	}
}

// waitEstablished polls the applied CRDs until the API server serves them.
func waitEstablished(t *testing.T, ctx context.Context, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	res := a.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		poll(t, "CRD "+o.GetName()+" established", 30*time.Second, func() bool {
			u, err := res.Get(ctx, o.GetName(), metav1.GetOptions{})
			ok, _ := crds.Established(u)
			return err == nil && ok
		})
	}
	a.mapper.(*restmapper.DeferredDiscoveryRESTMapper).Reset()
}

// poll checks cond every 50 ms until it holds or d passes.
func poll(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestApplyAndRBAC applies every kustomization to the API server, then
// runs kube-manager and checks the agent's rights with their own
// ServiceAccounts' tokens (the agent's as bound to a pod on a node, as
// kubelet mounts it), and runs the agent to publish its FilamentNode.
func TestApplyAndRBAC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a := newApplier(t)
	admin := kubernetes.NewForConfigOrDie(env.Config)
	for _, dir := range kustomizations {
		t.Run("apply "+dir, func(t *testing.T) {
			objs := build(t, dir)
			applyAll(t, ctx, a, objs)
			// Stored as built: each DaemonSet reads this build's ConfigMap.
			for _, name := range []string{"filament-dataplane", "filament-agent"} {
				ds, err := admin.AppsV1().DaemonSets("filament-system").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var cm string
				for _, v := range ds.Spec.Template.Spec.Volumes {
					if v.ConfigMap != nil {
						cm = v.ConfigMap.Name
					}
				}
				if !strings.HasPrefix(cm, name+"-") || find(objs, "ConfigMap", cm) == nil {
					t.Errorf("the stored DaemonSet %s reads ConfigMap %q, not this build's %s-<hash>", name, cm, name)
				}
				if _, err := admin.CoreV1().ConfigMaps("filament-system").Get(ctx, cm, metav1.GetOptions{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if t.Failed() {
		return
	}
	port := kubeManagerMakesPort(t, ctx, admin)
	agentRights(t, ctx, admin, port)
	agentOwnFilamentNode(t, ctx, admin)
	agentPublishes(t, ctx, admin, "fn-node-d")
}
