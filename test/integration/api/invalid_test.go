package api_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Manifests in these tables are complete and valid but for one field, which
// the case names; the rest is shared below.
const (
	deployment = `
apiVersion: apps.skiff.dev/v1alpha1
kind: Deployment
metadata: {name: d}
spec:
  replicas: 1
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec:
      containers: [{name: c, image: busybox}]
`
	pod = `
apiVersion: core.skiff.dev/v1alpha1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: busybox}]
`
	boundPod = `
apiVersion: core.skiff.dev/v1alpha1
kind: Pod
metadata: {name: p}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
  initContainers: [{name: i, image: busybox}]
`
	job = `
apiVersion: batch.skiff.dev/v1alpha1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
`
	statefulSet = `
apiVersion: apps.skiff.dev/v1alpha1
kind: StatefulSet
metadata: {name: s}
spec:
  serviceName: s
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec:
      containers: [{name: c, image: busybox}]
`
	service = `
apiVersion: core.skiff.dev/v1alpha1
kind: Service
metadata: {name: svc}
spec:
  selector: {app: d}
  ports: [{port: 80}]
`
	claim = `
apiVersion: core.skiff.dev/v1alpha1
kind: PersistentVolumeClaim
metadata: {name: c}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`
	volume = `
apiVersion: core.skiff.dev/v1alpha1
kind: PersistentVolume
metadata: {name: v}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /data}
`
	cronJob = `
apiVersion: batch.skiff.dev/v1alpha1
kind: CronJob
metadata: {name: cj}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
`
	daemonSet = `
apiVersion: apps.skiff.dev/v1alpha1
kind: DaemonSet
metadata: {name: ds}
spec:
  selector: {matchLabels: {app: ds}}
  template:
    metadata: {labels: {app: ds}}
    spec:
      containers: [{name: c, image: busybox}]
`
	storageClass = `
apiVersion: storage.skiff.dev/v1alpha1
kind: StorageClass
metadata: {name: sc}
provisioner: skiff.dev/local-path
`
)

// invalid is one manifest the API server must refuse, with the field path
// and the words the user sees.
type invalid struct {
	base    string
	mutate  func(obj map[string]any)
	path    string
	message string
}

func set(path string, value any) func(map[string]any) {
	return func(obj map[string]any) { Expect(setPath(obj, path, value)).To(Succeed()) }
}

// setPath sets a dotted path ("spec.template.spec.containers[0].image").
func setPath(obj map[string]any, path string, value any) error {
	parts := strings.Split(path, ".")
	var cur any = obj
	for i, p := range parts {
		name, index := p, -1
		if open := strings.Index(p, "["); open >= 0 {
			name = p[:open]
			index = int(p[open+1] - '0')
		}
		m := cur.(map[string]any)
		lastPart := i == len(parts)-1
		if index < 0 {
			if lastPart {
				m[name] = value
				return nil
			}
			if _, ok := m[name].(map[string]any); !ok {
				m[name] = map[string]any{}
			}
			cur = m[name]
			continue
		}
		list := m[name].([]any)
		if lastPart {
			list[index] = value
			return nil
		}
		cur = list[index]
	}
	return nil
}

var createCases = map[string]invalid{
	"deployment selector does not match labels": {deployment, set("spec.template.metadata.labels", map[string]any{"app": "other"}),
		"spec.template.metadata.labels", "selector does not match template labels"},
	"deployment selector expression does not match": {deployment, set("spec.selector", map[string]any{"matchExpressions": []any{map[string]any{"key": "app", "operator": "In", "values": []any{"x"}}}}),
		"spec.template.metadata.labels", "selector does not match template labels"},
	"deployment empty selector": {deployment, set("spec.selector", map[string]any{}),
		"spec.selector", "empty selector is invalid"},
	"deployment negative replicas": {deployment, set("spec.replicas", -1),
		"spec.replicas", "must be greater than or equal to 0"},
	"deployment negative minReadySeconds": {deployment, set("spec.minReadySeconds", -5),
		"spec.minReadySeconds", "must be greater than or equal to 0"},
	"deployment progress deadline not above minReadySeconds": {deployment, func(o map[string]any) {
		set("spec.minReadySeconds", 30)(o)
		set("spec.progressDeadlineSeconds", 10)(o)
	}, "spec.progressDeadlineSeconds", "must be greater than minReadySeconds"},
	"deployment unknown strategy type": {deployment, set("spec.strategy", map[string]any{"type": "BlueGreen"}),
		"spec.strategy.type", `Unsupported value: "BlueGreen"`},
	"deployment recreate with rollingUpdate": {deployment, set("spec.strategy", map[string]any{"type": "Recreate", "rollingUpdate": map[string]any{"maxSurge": 1}}),
		"spec.strategy.rollingUpdate", "may not be specified when strategy type is 'Recreate'"},
	"deployment maxSurge and maxUnavailable both zero": {deployment, set("spec.strategy", map[string]any{"rollingUpdate": map[string]any{"maxSurge": 0, "maxUnavailable": "0%"}}),
		"spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0"},
	"deployment maxUnavailable above 100%": {deployment, set("spec.strategy", map[string]any{"rollingUpdate": map[string]any{"maxUnavailable": "150%"}}),
		"spec.strategy.rollingUpdate.maxUnavailable", "percentage not above 100%"},
	"deployment template restartPolicy Never": {deployment, set("spec.template.spec.restartPolicy", "Never"),
		"spec.template.spec.restartPolicy", "only restartPolicy Always is supported"},
	"deployment without containers": {deployment, set("spec.template.spec.containers", []any{}),
		"spec.template.spec.containers", "should have at least 1 items"},
	"pod unknown restartPolicy": {pod, set("spec.restartPolicy", "Sometimes"),
		"spec.restartPolicy", `Unsupported value: "Sometimes"`},
	"pod unknown imagePullPolicy": {pod, set("spec.containers[0].imagePullPolicy", "Maybe"),
		"spec.containers[0].imagePullPolicy", `Unsupported value: "Maybe"`},
	"pod ephemeral containers": {pod, set("spec.ephemeralContainers", []any{map[string]any{"name": "debug", "image": "busybox"}}),
		"spec.ephemeralContainers", "ephemeralContainers is not supported by skiff"},
	"pod runtimeClassName": {pod, set("spec.runtimeClassName", "gvisor"),
		"spec.runtimeClassName", "runtimeClassName is not supported by skiff"},
	"pod windows": {pod, set("spec.os", map[string]any{"name": "windows"}),
		"spec.os.name", "only linux pods are supported by skiff"},
	"pod user namespaces": {pod, set("spec.hostUsers", false),
		"spec.hostUsers", "hostUsers: false (user namespaces) is not supported by skiff"},
	"pod resource claims": {pod, set("spec.resourceClaims", []any{map[string]any{"name": "gpu", "resourceClaimName": "gpu"}}),
		"spec.resourceClaims", "resourceClaims is not supported by skiff"},
	"pod nfs volume": {pod, set("spec.volumes", []any{map[string]any{"name": "v", "nfs": map[string]any{"server": "nfs", "path": "/"}}}),
		"spec.volumes[0].nfs", "this volume type is not supported by skiff"},
	"pod csi volume": {pod, set("spec.volumes", []any{map[string]any{"name": "v", "csi": map[string]any{"driver": "x"}}}),
		"spec.volumes[0].csi", "this volume type is not supported by skiff"},
	"pod HugePages emptyDir": {pod, set("spec.volumes", []any{map[string]any{"name": "v", "emptyDir": map[string]any{"medium": "HugePages"}}}),
		"spec.volumes[0].emptyDir.medium", `Unsupported value: "HugePages"`},
	"pod container resize policy": {pod, set("spec.containers[0].resizePolicy", []any{map[string]any{"resourceName": "cpu", "restartPolicy": "NotRequired"}}),
		"spec.containers[0].resizePolicy", "resizePolicy is not supported by skiff"},
	"pod negative grace period": {pod, set("spec.terminationGracePeriodSeconds", -1),
		"spec.terminationGracePeriodSeconds", "should be greater than or equal to 0"},
	"pod toleration Exists with value": {pod, set("spec.tolerations", []any{map[string]any{"key": "k", "operator": "Exists", "value": "v"}}),
		"spec.tolerations[0].value", "value must be empty when operator is Exists"},
	"pod label value too long": {pod, set("spec.affinity", map[string]any{"podAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": []any{
		map[string]any{"topologyKey": "zone", "labelSelector": map[string]any{"matchLabels": map[string]any{"app": strings.Repeat("x", 64)}}}}}}),
		"matchLabels.app", "may not be more than 63 bytes"},
	"pod In expression without values": {pod, set("spec.affinity", map[string]any{"podAntiAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": []any{
		map[string]any{"topologyKey": "zone", "labelSelector": map[string]any{"matchExpressions": []any{map[string]any{"key": "app", "operator": "In"}}}}}}}),
		"matchExpressions[0]", "values must be non-empty for operators In and NotIn"},
	"job restartPolicy Always": {job, set("spec.template.spec.restartPolicy", "Always"),
		"spec.template.spec.restartPolicy", "a Job's pods need restartPolicy OnFailure or Never"},
	"job negative parallelism": {job, set("spec.parallelism", -2),
		"spec.parallelism", "should be greater than or equal to 0"},
	"job indexed without completions": {job, set("spec.completionMode", "Indexed"),
		"spec.completions", "completions is required when completionMode is Indexed"},
	"job backoffLimitPerIndex when not indexed": {job, set("spec.backoffLimitPerIndex", 1),
		"spec.backoffLimitPerIndex", "requires completionMode Indexed"},
	"job managedBy": {job, set("spec.managedBy", "kueue.x-k8s.io/multikueue"),
		"spec.managedBy", "managedBy is not supported by skiff"},
	"job selector without manualSelector": {job, set("spec.selector", map[string]any{"matchLabels": map[string]any{"a": "b"}}),
		"spec.selector", "selector may only be set together with manualSelector: true"},
	"job pod failure policy unknown action": {job, func(o map[string]any) {
		set("spec.podFailurePolicy", map[string]any{"rules": []any{map[string]any{"action": "Retry", "onExitCodes": map[string]any{"operator": "In", "values": []any{1}}}}})(o)
	}, "spec.podFailurePolicy.rules[0].action", `Unsupported value: "Retry"`},
	"cronjob TZ in schedule": {cronJob, set("spec.schedule", "CRON_TZ=UTC 0 * * * *"),
		"spec.schedule", "cannot use TZ or CRON_TZ in schedule"},
	"cronjob name too long": {cronJob, set("metadata.name", strings.Repeat("c", 53)),
		"metadata.name", "must be no more than 52 characters"},
	"cronjob unknown concurrency policy": {cronJob, set("spec.concurrencyPolicy", "Sometimes"),
		"spec.concurrencyPolicy", `Unsupported value: "Sometimes"`},
	"cronjob negative history limit": {cronJob, set("spec.successfulJobsHistoryLimit", -1),
		"spec.successfulJobsHistoryLimit", "must be greater than or equal to 0"},
	"statefulset unknown pod management policy": {statefulSet, set("spec.podManagementPolicy", "Random"),
		"spec.podManagementPolicy", `Unsupported value: "Random"`},
	"statefulset negative partition": {statefulSet, set("spec.updateStrategy", map[string]any{"rollingUpdate": map[string]any{"partition": -1}}),
		"spec.updateStrategy.rollingUpdate.partition", "must be greater than or equal to 0"},
	"statefulset negative ordinals start": {statefulSet, set("spec.ordinals", map[string]any{"start": -1}),
		"spec.ordinals.start", "must be greater than or equal to 0"},
	"daemonset OnDelete with rollingUpdate": {daemonSet, set("spec.updateStrategy", map[string]any{"type": "OnDelete", "rollingUpdate": map[string]any{"maxUnavailable": 1}}),
		"spec.updateStrategy.rollingUpdate", "only allowed for updateStrategy 'RollingUpdate'"},
	"service LoadBalancer": {service, set("spec.type", "LoadBalancer"),
		"spec.type", "only types ClusterIP and NodePort are supported by skiff"},
	"service externalIPs": {service, set("spec.externalIPs", []any{"192.0.2.1"}),
		"spec.externalIPs", "externalIPs is not supported by skiff"},
	"service SCTP port": {service, set("spec.ports[0]", map[string]any{"port": 80, "protocol": "SCTP"}),
		"spec.ports[0].protocol", `Unsupported value: "SCTP"`},
	"service IPv6": {service, set("spec.ipFamilies", []any{"IPv6"}),
		"spec.ipFamilies", "only IPv4 is supported by skiff"},
	"service without ports": {service, func(o map[string]any) { delete(o["spec"].(map[string]any), "ports") },
		"spec.ports", "ports are required, except for a headless service"},
	"claim without storage request": {claim, set("spec.resources", map[string]any{"requests": map[string]any{"cpu": "1"}}),
		"spec.resources.requests", "resources.requests.storage is required"},
	"claim data source": {claim, set("spec.dataSource", map[string]any{"kind": "VolumeSnapshot", "name": "snap", "apiGroup": "snapshot.storage.k8s.io"}),
		"spec.dataSource", "dataSource is not supported by skiff"},
	"claim block volume": {claim, set("spec.volumeMode", "Block"),
		"spec.volumeMode", `Unsupported value: "Block"`},
	"volume nfs source": {volume, func(o map[string]any) {
		spec := o["spec"].(map[string]any)
		delete(spec, "hostPath")
		spec["nfs"] = map[string]any{"server": "nfs", "path": "/"}
	}, "spec.nfs", "this volume source is not supported by skiff"},
	"volume without capacity": {volume, func(o map[string]any) { delete(o["spec"].(map[string]any), "capacity") },
		"spec.capacity", "capacity.storage is required"},
	"volume Recycle reclaim policy": {volume, set("spec.persistentVolumeReclaimPolicy", "Recycle"),
		"spec.persistentVolumeReclaimPolicy", `Unsupported value: "Recycle"`},
	"local volume without node affinity": {volume, func(o map[string]any) {
		spec := o["spec"].(map[string]any)
		delete(spec, "hostPath")
		spec["local"] = map[string]any{"path": "/mnt/disk"}
	}, "spec.nodeAffinity", "a local volume requires nodeAffinity"},
	"storage class foreign provisioner": {storageClass, set("provisioner", "ebs.csi.aws.com"),
		"provisioner", `Unsupported value: "ebs.csi.aws.com"`},
	"storage class unknown binding mode": {storageClass, set("volumeBindingMode", "Later"),
		"volumeBindingMode", `Unsupported value: "Later"`},
}

// updateCases change a valid stored object; the change must be refused.
var updateCases = map[string]invalid{
	"deployment selector is immutable": {deployment, func(o map[string]any) {
		set("spec.selector", map[string]any{"matchLabels": map[string]any{"app": "d", "v": "2"}})(o)
		set("spec.template.metadata.labels", map[string]any{"app": "d", "v": "2"})(o)
	}, "spec.selector", "selector is immutable"},
	"statefulset serviceName is immutable": {statefulSet, set("spec.serviceName", "other"),
		"spec.serviceName", "serviceName is immutable"},
	"statefulset volumeClaimTemplates are immutable": {statefulSet, set("spec.volumeClaimTemplates", []any{map[string]any{"metadata": map[string]any{"name": "data"},
		"spec": map[string]any{"accessModes": []any{"ReadWriteOnce"}, "resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}}),
		"spec.volumeClaimTemplates", "volumeClaimTemplates is immutable"},
	"job template is immutable": {job, set("spec.template.spec.containers[0].image", "busybox:2"),
		"", "spec.template is immutable"},
	"pod nodeName is immutable once set": {pod, nil, "spec.nodeName", "nodeName is immutable once set"},
	"pod nodeName may not be cleared": {boundPod, func(o map[string]any) { delete(o["spec"].(map[string]any), "nodeName") },
		"spec.nodeName", "nodeName is immutable once set"},
	"pod containers may not be added": {pod, set("spec.containers", []any{map[string]any{"name": "c", "image": "busybox"}, map[string]any{"name": "d", "image": "busybox"}}),
		"spec.containers", "containers may not be added or removed"},
	"pod init containers may not be added": {pod, set("spec.initContainers", []any{map[string]any{"name": "i", "image": "busybox"}}),
		"spec.initContainers", "containers may not be added or removed"},
	"pod init containers may not be removed": {boundPod, func(o map[string]any) { delete(o["spec"].(map[string]any), "initContainers") },
		"spec.initContainers", "containers may not be added or removed"},
	"pod restartPolicy is immutable": {pod, set("spec.restartPolicy", "Never"),
		"spec.restartPolicy", "restartPolicy is immutable"},
	"claim volumeName is immutable once set":       {claim, nil, "spec.volumeName", "volumeName is immutable once set"},
	"claim storageClassName is immutable once set": {claim, nil, "spec.storageClassName", "storageClassName is immutable once set"},
	"storage class reclaim policy is immutable": {storageClass, set("reclaimPolicy", "Retain"),
		"reclaimPolicy", "reclaimPolicy is immutable"},
	"service clusterIP is immutable once set": {service, nil, "spec.clusterIP", "clusterIP is immutable once set"},
}

// setOnce gives the first value to a field that update cases then change.
var setOnce = map[string][2]any{
	"pod nodeName is immutable once set":           {"spec.nodeName", "n1"},
	"claim volumeName is immutable once set":       {"spec.volumeName", "v1"},
	"claim storageClassName is immutable once set": {"spec.storageClassName", "fast"},
	"service clusterIP is immutable once set":      {"spec.clusterIP", "10.96.0.10"},
}

var _ = Describe("admission", func() {
	It("has a table of at least thirty invalid manifests", func() {
		Expect(len(createCases)).To(BeNumerically(">=", 30))
	})

	for name, tc := range createCases {
		It("refuses on create: "+name, func() {
			ns := newNamespace("invalid")
			obj := fromYAML(tc.base, ns)
			Expect(k8sClient.Create(ctx, obj.DeepCopy(), client.DryRunAll)).To(Succeed(), "the base manifest must be valid")
			tc.mutate(obj.Object)
			expectInvalid(k8sClient.Create(ctx, obj), tc)
		})
	}

	for name, tc := range updateCases {
		It("refuses on update: "+name, func() {
			ns := newNamespace("immutable")
			obj := fromYAML(tc.base, ns)
			mutate := tc.mutate
			if first, ok := setOnce[name]; ok {
				Expect(setPath(obj.Object, first[0].(string), first[1])).To(Succeed())
				mutate = set(first[0].(string), first[1].(string)+"-changed")
			}
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			mutate(obj.Object)
			expectInvalid(k8sClient.Update(ctx, obj), tc)
		})
	}

	It("keeps nothing of a refused object", func() {
		ns := newNamespace("refused")
		obj := fromYAML(pod, ns)
		set("spec.runtimeClassName", "kata")(obj.Object)
		Expect(k8sClient.Create(ctx, obj)).NotTo(Succeed())
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(obj.GroupVersionKind())
		Expect(apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got))).To(BeTrue())
	})
})

func expectInvalid(err error, tc invalid) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted it")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got %v", err)
	Expect(err.Error()).To(ContainSubstring(tc.path), "the error names the field")
	Expect(err.Error()).To(ContainSubstring(tc.message), "the error says why")
}
