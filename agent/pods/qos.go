package pods

import (
	corev1 "k8s.io/api/core/v1"
)

// QOSClass is the pod's quality-of-service class, as upstream's GetPodQOS:
// BestEffort without any cpu or memory request or limit, Guaranteed when
// every container limits both and requests equal limits, else Burstable.
// skiff's CRDs do not default requests to limits, so a missing request
// counts as equal to its limit, as upstream defaulting would make it.
func QOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	all := make([]corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	all = append(all, spec.InitContainers...)
	all = append(all, spec.Containers...)
	any, guaranteed := false, true
	for _, c := range all {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			if (hasReq && !req.IsZero()) || (hasLim && !lim.IsZero()) {
				any = true
			}
			if !hasLim || lim.IsZero() {
				guaranteed = false
				continue
			}
			if hasReq && req.Cmp(lim) != 0 {
				guaranteed = false
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	default:
		return corev1.PodQOSBurstable
	}
}
