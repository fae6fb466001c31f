package nodeaccess

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// References are the Secrets and ConfigMaps a pod uses, by name in its
// namespace, each list sorted and without duplicates.
type References struct {
	Secrets    []string
	ConfigMaps []string
}

// Empty tells whether the pod uses no Secret and no ConfigMap.
func (r References) Empty() bool { return len(r.Secrets) == 0 && len(r.ConfigMaps) == 0 }

// PodReferences collects the Secrets and ConfigMaps a pod spec names, the
// ones a node needs to run it: volumes (secret, configMap and projected
// sources), env valueFrom and envFrom of every container, init and
// ephemeral container, and imagePullSecrets. Optional references count too:
// the agent reads them when they exist.
func PodReferences(spec *corev1.PodSpec) References {
	var secrets, configMaps []string
	addS := func(name string) {
		if name != "" {
			secrets = append(secrets, name)
		}
	}
	addC := func(name string) {
		if name != "" {
			configMaps = append(configMaps, name)
		}
	}
	for _, s := range spec.ImagePullSecrets {
		addS(s.Name)
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i].VolumeSource
		if v.Secret != nil {
			addS(v.Secret.SecretName)
		}
		if v.ConfigMap != nil {
			addC(v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					addS(src.Secret.Name)
				}
				if src.ConfigMap != nil {
					addC(src.ConfigMap.Name)
				}
			}
		}
	}
	env := func(envFrom []corev1.EnvFromSource, envs []corev1.EnvVar) {
		for _, from := range envFrom {
			if from.SecretRef != nil {
				addS(from.SecretRef.Name)
			}
			if from.ConfigMapRef != nil {
				addC(from.ConfigMapRef.Name)
			}
		}
		for _, e := range envs {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.SecretKeyRef != nil {
				addS(e.ValueFrom.SecretKeyRef.Name)
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				addC(e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
	}
	for i := range spec.InitContainers {
		env(spec.InitContainers[i].EnvFrom, spec.InitContainers[i].Env)
	}
	for i := range spec.Containers {
		env(spec.Containers[i].EnvFrom, spec.Containers[i].Env)
	}
	for i := range spec.EphemeralContainers {
		env(spec.EphemeralContainers[i].EnvFrom, spec.EphemeralContainers[i].Env)
	}
	return References{Secrets: sortedUnique(secrets), ConfigMaps: sortedUnique(configMaps)}
}

// merge adds other's names to r.
func (r References) merge(other References) References {
	return References{
		Secrets:    sortedUnique(append(slices.Clone(r.Secrets), other.Secrets...)),
		ConfigMaps: sortedUnique(append(slices.Clone(r.ConfigMaps), other.ConfigMaps...)),
	}
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}
