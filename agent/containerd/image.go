package containerd

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

// File is one entry of an image's single layer.
type File struct {
	// Path inside the image, without a leading slash.
	Path string
	// Mode holds the permission bits (and os.ModeDir or os.ModeSymlink).
	Mode os.FileMode
	// Data is the content of a regular file.
	Data []byte
	// Link is the target of a symlink.
	Link string
}

// ImageConfig is the runtime configuration of a built image.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
}

// Layer builds the single uncompressed layer of files and the image
// configuration that names it; it returns both and the layer's digest
// (also its diff ID).
func Layer(files []File, cfg ImageConfig) (config, layer []byte, layerDigest string, err error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	var addDirs func(p string) error
	addDirs = func(p string) error {
		d := p[:max(0, strings.LastIndex(p, "/"))]
		if d == "" || dirs[d] {
			return nil
		}
		if err := addDirs(d); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch})
	}
	for _, f := range files {
		p := strings.TrimPrefix(f.Path, "/")
		if err := addDirs(p); err != nil {
			return nil, nil, "", err
		}
		h := &tar.Header{Name: p, Mode: int64(f.Mode.Perm()), ModTime: epoch}
		switch {
		case f.Mode&os.ModeDir != 0:
			if dirs[p] {
				continue
			}
			dirs[p] = true
			h.Typeflag, h.Name = tar.TypeDir, p+"/"
		case f.Mode&os.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, nil, "", err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, nil, "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	layerDigest = "sha256:" + hex.EncodeToString(sum[:])
	config, err = json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      epoch.UTC().Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": cfg.Entrypoint, "Cmd": cfg.Cmd, "Env": cfg.Env, "WorkingDir": cfg.WorkingDir, "User": cfg.User,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	return config, buf.Bytes(), layerDigest, err
}

// BuildImage writes a docker-archive (docker save format) holding one image
// named ref with one layer of files; `ctr images import` reads it.
func BuildImage(w io.Writer, ref string, files []File, cfg ImageConfig) error {
	config, layer, layerDigest, err := Layer(files, cfg)
	if err != nil {
		return err
	}
	layerID := strings.TrimPrefix(layerDigest, "sha256:")
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configName, "RepoTags": []string{ref}, "Layers": []string{layerID + "/layer.tar"}}})
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0)
	out := tar.NewWriter(w)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config}, {layerID + "/layer.tar", layer}, {"manifest.json", manifest}} {
		if err := out.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := out.Write(e.data); err != nil {
			return err
		}
	}
	return out.Close()
}

// ImportImage imports a docker-archive into the CRI namespace (k8s.io) of
// the containerd at address, with the ctr client.
func ImportImage(ctx context.Context, address, archive string) error {
	cmd := exec.CommandContext(ctx, "ctr", "--address", address, "--namespace", "k8s.io", "images", "import", archive)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s: %w: %s", archive, err, out)
	}
	return nil
}
