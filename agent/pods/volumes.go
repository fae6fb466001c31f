package pods

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"

	"github.com/skiff-dev/skiff/internal/mounts"
)

// HostVolumes prepares pod volumes in directories of the host under
// <root>/pods/<uid>/volumes: emptyDir (tmpfs for medium Memory), hostPath,
// and ConfigMap, Secret, downward API and projected contents written with an
// atomic swap of a ..data symlink, as upstream's atomic writer.
type HostVolumes struct {
	root   string
	reader client.Reader
}

var _ Volumes = (*HostVolumes)(nil)

// NewHostVolumes returns volumes under root, reading ConfigMaps and Secrets
// through reader.
func NewHostVolumes(root string, reader client.Reader) *HostVolumes {
	return &HostVolumes{root: root, reader: reader}
}

func (v *HostVolumes) podDir(uid types.UID) string { return filepath.Join(v.root, "pods", string(uid)) }

type file struct {
	data []byte
	mode os.FileMode
}

// Setup makes every volume ready and returns their host paths.
func (v *HostVolumes) Setup(ctx context.Context, pod *corev1alpha1.Pod) (map[string]string, error) {
	out := map[string]string{}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		dir := filepath.Join(v.podDir(pod.UID), "volumes", vol.Name)
		switch {
		case vol.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return nil, err
			}
			_ = os.Chmod(dir, 0o777)
			if vol.EmptyDir.Medium == corev1.StorageMediumMemory && !isMountPoint(dir) {
				opts := ""
				if vol.EmptyDir.SizeLimit != nil && !vol.EmptyDir.SizeLimit.IsZero() {
					opts = "size=" + strconv.FormatInt(vol.EmptyDir.SizeLimit.Value(), 10)
				}
				if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
					return nil, fmt.Errorf("mounting tmpfs for volume %s: %w", vol.Name, err)
				}
			}
			out[vol.Name] = dir
		case vol.HostPath != nil:
			if err := prepareHostPath(vol.HostPath.Path, vol.HostPath.Type); err != nil {
				return nil, fmt.Errorf("hostPath %s of volume %s: %w", vol.HostPath.Path, vol.Name, err)
			}
			out[vol.Name] = vol.HostPath.Path
		case vol.PersistentVolumeClaim != nil:
			p, err := v.claimPath(ctx, pod, vol.PersistentVolumeClaim.ClaimName)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", vol.Name, err)
			}
			out[vol.Name] = p
		case vol.ConfigMap != nil || vol.Secret != nil || vol.DownwardAPI != nil || vol.Projected != nil:
			files, err := v.contents(ctx, pod, vol)
			if err != nil {
				return nil, err
			}
			if err := writeAtomic(dir, files); err != nil {
				return nil, fmt.Errorf("writing volume %s: %w", vol.Name, err)
			}
			out[vol.Name] = dir
		default:
			return nil, fmt.Errorf("volume %s: this volume type is not supported by skiff-agent yet", vol.Name)
		}
	}
	return out, nil
}

// prepareHostPath checks or creates a host path as its type asks.
func prepareHostPath(p string, t *corev1.HostPathType) error {
	if t == nil {
		return nil
	}
	switch *t {
	case corev1.HostPathDirectoryOrCreate:
		return os.MkdirAll(p, 0o755)
	case corev1.HostPathFileOrCreate:
		if _, err := os.Stat(p); os.IsNotExist(err) {
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			return os.WriteFile(p, nil, 0o644)
		}
	case corev1.HostPathDirectory, corev1.HostPathFile, corev1.HostPathSocket:
		_, err := os.Stat(p)
		return err
	}
	return nil
}

// claimPath is the host directory of the volume bound to a pod's claim: a
// hostPath or local PersistentVolume. A claim that is missing, being
// deleted or not bound yet keeps the pod waiting, with the reason in the
// FailedMount event.
func (v *HostVolumes) claimPath(ctx context.Context, pod *corev1alpha1.Pod, name string) (string, error) {
	pvc := &corev1alpha1.PersistentVolumeClaim{}
	if err := v.reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: name}, pvc); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("persistentvolumeclaim %q not found", name)
		}
		return "", fmt.Errorf("persistentvolumeclaim %q: %w", name, err)
	}
	if pvc.DeletionTimestamp != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q is being deleted", name)
	}
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound yet", name)
	}
	pv := &corev1alpha1.PersistentVolume{}
	if err := v.reader.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
		return "", fmt.Errorf("persistentvolume %q of claim %q: %w", pvc.Spec.VolumeName, name, err)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return "", fmt.Errorf("persistentvolume %q is not bound to claim %q", pv.Name, name)
	}
	switch {
	case pv.Spec.HostPath != nil:
		if err := prepareHostPath(pv.Spec.HostPath.Path, pv.Spec.HostPath.Type); err != nil {
			return "", fmt.Errorf("hostPath %s of persistentvolume %q: %w", pv.Spec.HostPath.Path, pv.Name, err)
		}
		return pv.Spec.HostPath.Path, nil
	case pv.Spec.Local != nil:
		if _, err := os.Stat(pv.Spec.Local.Path); err != nil {
			return "", fmt.Errorf("local path of persistentvolume %q: %w", pv.Name, err)
		}
		return pv.Spec.Local.Path, nil
	}
	return "", fmt.Errorf("persistentvolume %q: only hostPath and local volumes are supported by skiff-agent", pv.Name)
}

// ReadOnlyVolume tells whether every mount of the pod's volume is read-only
// whatever the mount says: a persistentVolumeClaim source with readOnly.
func ReadOnlyVolume(pod *corev1alpha1.Pod, name string) bool {
	for i := range pod.Spec.Volumes {
		if v := &pod.Spec.Volumes[i]; v.Name == name {
			return v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly
		}
	}
	return false
}

func mode(m *int32, def int32) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return os.FileMode(def)
}

func addItems(files map[string]file, data map[string][]byte, items []corev1.KeyToPath, def int32, what string, optional bool) error {
	if len(items) == 0 {
		for k, d := range data {
			files[k] = file{d, mode(nil, def)}
		}
		return nil
	}
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("configuration key %q not found in %s", it.Key, what)
		}
		files[it.Path] = file{d, mode(it.Mode, def)}
	}
	return nil
}

func (v *HostVolumes) configMapData(ctx context.Context, ns, name string, optional bool) (map[string][]byte, bool, error) {
	cm := &corev1.ConfigMap{}
	if err := v.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) && optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, s := range cm.Data {
		data[k] = []byte(s)
	}
	for k, b := range cm.BinaryData {
		data[k] = b
	}
	return data, true, nil
}

func (v *HostVolumes) secretData(ctx context.Context, ns, name string, optional bool) (map[string][]byte, bool, error) {
	s := &corev1.Secret{}
	if err := v.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) && optional {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("secret %q: %w", name, err)
	}
	return s.Data, true, nil
}

func downwardItems(files map[string]file, pod *corev1alpha1.Pod, items []corev1.DownwardAPIVolumeFile, def int32) error {
	n := &Node{opts: Options{HostIP: func() string { return "" }}}
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = n.fieldValue(pod, it.FieldRef.FieldPath, "")
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return fmt.Errorf("container %q not found", it.ResourceFieldRef.ContainerName)
			}
			val, err = n.resourceValue(pod, c, it.ResourceFieldRef)
		}
		if err != nil {
			return err
		}
		files[it.Path] = file{[]byte(val), mode(it.Mode, def)}
	}
	return nil
}

// contents computes the files of a ConfigMap, Secret, downward API or
// projected volume.
func (v *HostVolumes) contents(ctx context.Context, pod *corev1alpha1.Pod, vol *corev1.Volume) (map[string]file, error) {
	files := map[string]file{}
	opt := func(b *bool) bool { return b != nil && *b }
	switch {
	case vol.ConfigMap != nil:
		data, _, err := v.configMapData(ctx, pod.Namespace, vol.ConfigMap.Name, opt(vol.ConfigMap.Optional))
		if err != nil {
			return nil, err
		}
		def := int32(0o644)
		if vol.ConfigMap.DefaultMode != nil {
			def = *vol.ConfigMap.DefaultMode
		}
		return files, addItems(files, data, vol.ConfigMap.Items, def, "configmap "+vol.ConfigMap.Name, opt(vol.ConfigMap.Optional))
	case vol.Secret != nil:
		data, _, err := v.secretData(ctx, pod.Namespace, vol.Secret.SecretName, opt(vol.Secret.Optional))
		if err != nil {
			return nil, err
		}
		def := int32(0o644)
		if vol.Secret.DefaultMode != nil {
			def = *vol.Secret.DefaultMode
		}
		return files, addItems(files, data, vol.Secret.Items, def, "secret "+vol.Secret.SecretName, opt(vol.Secret.Optional))
	case vol.DownwardAPI != nil:
		def := int32(0o644)
		if vol.DownwardAPI.DefaultMode != nil {
			def = *vol.DownwardAPI.DefaultMode
		}
		return files, downwardItems(files, pod, vol.DownwardAPI.Items, def)
	case vol.Projected != nil:
		def := int32(0o644)
		if vol.Projected.DefaultMode != nil {
			def = *vol.Projected.DefaultMode
		}
		for _, src := range vol.Projected.Sources {
			switch {
			case src.ConfigMap != nil:
				data, _, err := v.configMapData(ctx, pod.Namespace, src.ConfigMap.Name, opt(src.ConfigMap.Optional))
				if err != nil {
					return nil, err
				}
				if err := addItems(files, data, src.ConfigMap.Items, def, "configmap "+src.ConfigMap.Name, opt(src.ConfigMap.Optional)); err != nil {
					return nil, err
				}
			case src.Secret != nil:
				data, _, err := v.secretData(ctx, pod.Namespace, src.Secret.Name, opt(src.Secret.Optional))
				if err != nil {
					return nil, err
				}
				if err := addItems(files, data, src.Secret.Items, def, "secret "+src.Secret.Name, opt(src.Secret.Optional)); err != nil {
					return nil, err
				}
			case src.DownwardAPI != nil:
				if err := downwardItems(files, pod, src.DownwardAPI.Items, def); err != nil {
					return nil, err
				}
			}
		}
	}
	return files, nil
}

// writeAtomic makes dir hold exactly files, as upstream's AtomicWriter: the
// files live in a timestamped directory, ..data points to it, and each
// top-level name is a symlink through ..data, so a reader sees either the
// old or the new contents, never a mix.
func writeAtomic(dir string, files map[string]file) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dataLink := filepath.Join(dir, "..data")
	if old, err := os.Readlink(dataLink); err == nil && sameContents(filepath.Join(dir, old), files) {
		return nil
	}
	ts := filepath.Join(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.000000000"))
	if err := os.MkdirAll(ts, 0o755); err != nil {
		return err
	}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode.Perm()); err != nil {
			return err
		}
		_ = os.Chmod(full, f.mode.Perm())
	}
	oldTarget, _ := os.Readlink(dataLink)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dataLink); err != nil {
		return err
	}
	top := map[string]bool{}
	for p := range files {
		top[strings.SplitN(p, "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if oldTarget != "" && oldTarget != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, oldTarget))
	}
	return nil
}

func sameContents(dir string, files map[string]file) bool {
	count := 0
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, ok := files[rel]
		if !ok || info.Mode().Perm() != f.mode.Perm() {
			return fmt.Errorf("differs")
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.data) {
			return fmt.Errorf("differs")
		}
		count++
		return nil
	})
	return err == nil && count == len(files)
}

func isMountPoint(dir string) bool {
	mounts, _ := mounts.Under(dir)
	for _, m := range mounts {
		if m == dir {
			return true
		}
	}
	return false
}

// Cleanup unmounts and removes the pod's directory.
func (v *HostVolumes) Cleanup(_ context.Context, uid types.UID) error {
	dir := v.podDir(uid)
	mounts, _ := mounts.Under(dir)
	for _, m := range mounts {
		if err := syscall.Unmount(m, 0); err != nil {
			return fmt.Errorf("unmounting %s: %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}

// TerminationLogFiles returns the host files mounted at containers'
// terminationMessagePath: <root>/pods/<uid>/containers/<name>/<attempt>.
func TerminationLogFiles(root string) func(pod *corev1alpha1.Pod, container string, attempt uint32) (string, error) {
	return func(pod *corev1alpha1.Pod, container string, attempt uint32) (string, error) {
		dir := filepath.Join(root, "pods", string(pod.UID), "containers", container)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		p := filepath.Join(dir, strconv.Itoa(int(attempt)))
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return "", err
		}
		return p, nil
	}
}

// TerminationMessages reads what containers wrote to the files that
// TerminationLogFiles mounted, at most 4 KiB, as upstream.
func TerminationMessages(root string) func(uid types.UID, container string, attempt uint32) string {
	return func(uid types.UID, container string, attempt uint32) string {
		f, err := os.Open(filepath.Join(root, "pods", string(uid), "containers", container, strconv.Itoa(int(attempt))))
		if err != nil {
			return ""
		}
		defer f.Close()
		b := make([]byte, 4096)
		n, _ := f.Read(b)
		return string(b[:n])
	}
}
