package pods

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// configError is a container configuration the agent cannot build (a
// missing ConfigMap key): the container waits with CreateContainerConfigError.
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

// SandboxConfig builds the CRI sandbox configuration of a pod.
func (n *Node) SandboxConfig(pod *corev1alpha1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if len(hostname) > 63 {
		hostname = strings.TrimRight(hostname[:63], "-.")
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: filepath.Join(n.opts.RootDir, "logs", pod.Namespace+"_"+pod.Name+"_"+string(pod.UID)),
		Labels: map[string]string{
			cri.LabelPodName: pod.Name, cri.LabelPodNamespace: pod.Namespace, cri.LabelPodUID: string(pod.UID),
			cri.LabelNodeName: n.opts.NodeName, cri.LabelManaged: "true",
		},
		Annotations: map[string]string{},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	for k, v := range pod.Annotations {
		cfg.Annotations[k] = v
	}
	if pod.Spec.HostNetwork {
		cfg.Hostname = ""
		cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		cfg.Linux.SecurityContext.NamespaceOptions.Ipc = runtimeapi.NamespaceMode_NODE
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			cfg.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if sc.RunAsGroup != nil {
			cfg.Linux.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
		}
		cfg.Linux.SecurityContext.SupplementalGroups = sc.SupplementalGroups
	}
	cfg.DnsConfig = n.dnsConfig(pod)
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			cfg.PortMappings = append(cfg.PortMappings, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return cfg
}

// ContainerConfig builds the CRI configuration of one container.
func (n *Node) ContainerConfig(ctx context.Context, pod *corev1alpha1.Pod, c *corev1.Container, imageRef string, attempt uint32, volumes map[string]string, podIP string) (*runtimeapi.ContainerConfig, error) {
	envs, err := n.resolveEnv(ctx, pod, c, podIP)
	if err != nil {
		return nil, err
	}
	envMap := map[string]string{}
	for _, e := range envs {
		envMap[e.Key] = string(e.Value)
	}
	expand := func(in []string) []string {
		var out []string
		for _, s := range in {
			out = append(out, expandVars(s, envMap))
		}
		return out
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: imageRef, UserSpecifiedImage: c.Image},
		Command:    expand(c.Command),
		Args:       expand(c.Args),
		WorkingDir: c.WorkingDir,
		Envs:       envs,
		Labels: map[string]string{
			cri.LabelPodName: pod.Name, cri.LabelPodNamespace: pod.Namespace, cri.LabelPodUID: string(pod.UID),
			cri.LabelContainerName: c.Name, cri.LabelNodeName: n.opts.NodeName, cri.LabelManaged: "true",
		},
		Annotations: map[string]string{
			cri.AnnotationRestartCount:           strconv.Itoa(int(attempt)),
			cri.AnnotationContainerHash:          ContainerHash(c),
			cri.AnnotationTerminationMessagePath: c.TerminationMessagePath,
			cri.AnnotationContainerType:          containerType(pod, c),
			cri.AnnotationGracePeriod:            strconv.FormatInt(int64(gracePeriod(pod)/time.Second), 10),
		},
		LogPath: filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:   c.Stdin, StdinOnce: c.StdinOnce, Tty: c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       linuxResources(c),
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}},
		},
	}
	if pod.Spec.HostNetwork {
		cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	}
	if err := applySecurityContext(pod, c, cfg.Linux.SecurityContext); err != nil {
		return nil, err
	}
	for _, m := range c.VolumeMounts {
		host, ok := volumes[m.Name]
		if !ok {
			return nil, configError{fmt.Sprintf("volume %q of mount %s is not ready", m.Name, m.MountPath)}
		}
		if m.SubPath != "" {
			host = filepath.Join(host, m.SubPath)
		}
		cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: host, Readonly: m.ReadOnly || ReadOnlyVolume(pod, m.Name)})
	}
	if n.opts.TerminationLog != nil {
		// skiff's CRDs store no defaults inside containers: an empty path
		// is upstream's default.
		path := c.TerminationMessagePath
		if path == "" {
			path = corev1.TerminationMessagePathDefault
		}
		if host, err := n.opts.TerminationLog(pod, c.Name, attempt); err == nil && host != "" {
			cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{ContainerPath: path, HostPath: host})
		}
	}
	return cfg, nil
}

func applySecurityContext(pod *corev1alpha1.Pod, c *corev1.Container, out *runtimeapi.LinuxContainerSecurityContext) error {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	runAsUser := sc.RunAsUser
	if runAsUser == nil {
		runAsUser = psc.RunAsUser
	}
	runAsGroup := sc.RunAsGroup
	if runAsGroup == nil {
		runAsGroup = psc.RunAsGroup
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if runAsUser != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *runAsUser}
	}
	if runAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *runAsGroup}
	}
	if nonRoot != nil && *nonRoot {
		if runAsUser == nil {
			return configError{"container has runAsNonRoot and image will run as root (set runAsUser)"}
		}
		if *runAsUser == 0 {
			return configError{"container's runAsUser breaks non-root policy"}
		}
	}
	out.SupplementalGroups = psc.SupplementalGroups
	if sc.Privileged != nil {
		out.Privileged = *sc.Privileged
	}
	if sc.ReadOnlyRootFilesystem != nil {
		out.ReadonlyRootfs = *sc.ReadOnlyRootFilesystem
	}
	if sc.AllowPrivilegeEscalation != nil {
		out.NoNewPrivs = !*sc.AllowPrivilegeEscalation
	}
	if caps := sc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, a := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, capName(a))
		}
		for _, d := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, capName(d))
		}
	}
	return nil
}

func capName(c corev1.Capability) string {
	s := strings.ToUpper(string(c))
	if s == "ALL" || strings.HasPrefix(s, "CAP_") {
		return s
	}
	return "CAP_" + s
}

// linuxResources maps requests and limits to CRI, as upstream: shares from
// the cpu request, quota from the cpu limit, memory limit.
func linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{CpuPeriod: 100000}
	cpuReq, hasReq := c.Resources.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		cpuReq, hasReq = cpuLim, true
	}
	r.CpuShares = 2
	if hasReq {
		r.CpuShares = max(2, cpuReq.MilliValue()*1024/1000)
	}
	if hasLim {
		r.CpuQuota = max(1000, cpuLim.MilliValue()*100000/1000)
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = mem.Value()
	}
	return r
}

// expandVars replaces $(NAME) by the variable's value, leaving unknown
// references as they are and turning $$ into $, as upstream's expansion.
func expandVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resolveEnv builds a container's environment: envFrom first, then env,
// each value expanded against the variables before it.
func (n *Node) resolveEnv(ctx context.Context, pod *corev1alpha1.Pod, c *corev1.Container, podIP string) ([]*runtimeapi.KeyValue, error) {
	vars := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm := &corev1.ConfigMap{}
			err := n.opts.Reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: from.ConfigMapRef.Name}, cm)
			if err != nil {
				if apierrors.IsNotFound(err) && from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional {
					continue
				}
				return nil, configError{fmt.Sprintf("configmap %q not found", from.ConfigMapRef.Name)}
			}
			for k, v := range cm.Data {
				put(from.Prefix+k, v)
			}
		case from.SecretRef != nil:
			s := &corev1.Secret{}
			err := n.opts.Reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: from.SecretRef.Name}, s)
			if err != nil {
				if apierrors.IsNotFound(err) && from.SecretRef.Optional != nil && *from.SecretRef.Optional {
					continue
				}
				return nil, configError{fmt.Sprintf("secret %q not found", from.SecretRef.Name)}
			}
			for k, v := range s.Data {
				put(from.Prefix+k, string(v))
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			put(e.Name, expandVars(e.Value, vars))
			continue
		}
		v, ok, err := n.envValueFrom(ctx, pod, c, e.ValueFrom, podIP)
		if err != nil {
			return nil, err
		}
		if ok {
			put(e.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, 0, len(order))
	for _, k := range order {
		out = append(out, &runtimeapi.KeyValue{Key: k, Value: []byte(vars[k])})
	}
	return out, nil
}

func (n *Node) envValueFrom(ctx context.Context, pod *corev1alpha1.Pod, c *corev1.Container, from *corev1.EnvVarSource, podIP string) (string, bool, error) {
	switch {
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm := &corev1.ConfigMap{}
		if err := n.opts.Reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, cm); err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, configError{fmt.Sprintf("configmap %q not found", ref.Name)}
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if b, ok2 := cm.BinaryData[ref.Key]; ok2 {
				return string(b), true, nil
			}
			if optional {
				return "", false, nil
			}
			return "", false, configError{fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)}
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s := &corev1.Secret{}
		if err := n.opts.Reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, s); err != nil {
			if optional && apierrors.IsNotFound(err) {
				return "", false, nil
			}
			return "", false, configError{fmt.Sprintf("secret %q not found", ref.Name)}
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if optional {
				return "", false, nil
			}
			return "", false, configError{fmt.Sprintf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)}
		}
		return string(v), true, nil
	case from.FieldRef != nil:
		v, err := n.fieldValue(pod, from.FieldRef.FieldPath, podIP)
		if err != nil {
			return "", false, configError{err.Error()}
		}
		return v, true, nil
	case from.ResourceFieldRef != nil:
		v, err := n.resourceValue(pod, c, from.ResourceFieldRef)
		if err != nil {
			return "", false, configError{err.Error()}
		}
		return v, true, nil
	}
	return "", false, nil
}

// fieldValue answers a downward API field path.
func (n *Node) fieldValue(pod *corev1alpha1.Pod, path, podIP string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return n.opts.HostIP(), nil
	case "status.podIP", "status.podIPs":
		if pod.Spec.HostNetwork {
			return n.opts.HostIP(), nil
		}
		return podIP, nil
	}
	return "", fmt.Errorf("unsupported field path %q", path)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceValue answers a resourceFieldRef; a limit that is not set is the
// node's allocatable amount, as upstream.
func (n *Node) resourceValue(pod *corev1alpha1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	if ref.ContainerName != "" {
		c = nil
		for i := range pod.Spec.Containers {
			if pod.Spec.Containers[i].Name == ref.ContainerName {
				c = &pod.Spec.Containers[i]
			}
		}
		for i := range pod.Spec.InitContainers {
			if pod.Spec.InitContainers[i].Name == ref.ContainerName {
				c = &pod.Spec.InitContainers[i]
			}
		}
		if c == nil {
			return "", fmt.Errorf("container %q not found", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	var q resource.Quantity
	var has bool
	switch kind {
	case "limits":
		q, has = c.Resources.Limits[corev1.ResourceName(name)]
		if !has && n.opts.Allocatable != nil {
			q, has = n.opts.Allocatable()[corev1.ResourceName(name)]
		}
	case "requests":
		q, has = c.Resources.Requests[corev1.ResourceName(name)]
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	if !has {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if name == "cpu" {
		// Rounded up, as upstream's ConvertResourceCPUToString.
		m := divisor.MilliValue()
		return strconv.FormatInt((q.MilliValue()+m-1)/m, 10), nil
	}
	d := divisor.Value()
	return strconv.FormatInt((q.Value()+d-1)/d, 10), nil
}

func containerType(pod *corev1alpha1.Pod, c *corev1.Container) string {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			if IsSidecar(c) {
				return "sidecar"
			}
			return "init"
		}
	}
	return "regular"
}
