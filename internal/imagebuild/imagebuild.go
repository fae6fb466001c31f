// Package imagebuild makes container images on this machine without Docker
// or a registry: a root file system of busybox-static (a shell and every
// busybox applet, httpd and nc among them) plus files from the host, written
// as a one-layer docker-archive that containerd imports (agent/containerd
// builds the archive and imports it). `skiff image build` and the end-to-end
// suites use it. It reads host files and writes archives; it must not talk
// to a containerd itself.
package imagebuild

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/agent/containerd"
)

// BusyboxPackage names the Debian package that provides a static busybox.
const BusyboxPackage = "busybox-static"

// Busybox returns the root file system of a busybox-static image:
// /bin/busybox, a symlink per applet, /tmp, and an /etc/passwd and
// /etc/group with root and nobody. Its configuration runs sh with PATH=/bin.
func Busybox() ([]containerd.File, containerd.ImageConfig, error) {
	cfg := containerd.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return nil, cfg, fmt.Errorf("busybox is not installed: install it with `apt-get install -y %s`", BusyboxPackage)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		return nil, cfg, err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return nil, cfg, fmt.Errorf("listing busybox applets (is %s a static busybox? install %s): %w", bb, BusyboxPackage, err)
	}
	files := []containerd.File{
		{Path: "bin/busybox", Mode: 0o755, Data: data},
		{Path: "tmp", Mode: os.ModeDir | 0o1777},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			files = append(files, containerd.File{Path: "bin/" + applet, Mode: os.ModeSymlink | 0o777, Link: "busybox"})
		}
	}
	return files, cfg, nil
}

// HostFiles reads the host file or directory src into image files under
// dest (an absolute path in the image). A directory is copied with its
// contents; symlinks are kept as symlinks.
func HostFiles(src, dest string) ([]containerd.File, error) {
	if !path.IsAbs(dest) {
		return nil, fmt.Errorf("destination %q must be an absolute path in the image", dest)
	}
	dest = strings.TrimPrefix(path.Clean(dest), "/")
	info, err := os.Lstat(src)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		f, err := hostFile(src, dest, info)
		if err != nil {
			return nil, err
		}
		return []containerd.File{f}, nil
	}
	var files []containerd.File
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		name := dest
		if rel != "." {
			name = path.Join(dest, filepath.ToSlash(rel))
		}
		if name == "" {
			// The root directory of the image itself.
			return nil
		}
		f, err := hostFile(p, name, info)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

func hostFile(src, name string, info fs.FileInfo) (containerd.File, error) {
	f := containerd.File{Path: name, Mode: info.Mode()}
	switch {
	case info.IsDir():
		f.Mode = os.ModeDir | info.Mode().Perm()
	case info.Mode()&os.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return f, err
		}
		f.Mode, f.Link = os.ModeSymlink|0o777, link
	case info.Mode().IsRegular():
		data, err := os.ReadFile(src)
		if err != nil {
			return f, err
		}
		f.Mode, f.Data = info.Mode().Perm(), data
	default:
		return f, fmt.Errorf("%s: only regular files, directories and symlinks can go into an image", src)
	}
	return f, nil
}

// Merge returns files with later entries replacing earlier ones of the same
// path, so that added host files override the base root file system.
func Merge(layers ...[]containerd.File) []containerd.File {
	index := map[string]int{}
	var out []containerd.File
	for _, files := range layers {
		for _, f := range files {
			p := strings.Trim(f.Path, "/")
			f.Path = p
			if i, ok := index[p]; ok {
				out[i] = f
				continue
			}
			index[p] = len(out)
			out = append(out, f)
		}
	}
	return out
}

// Write writes a docker-archive of one image named ref holding files.
func Write(w io.Writer, ref string, files []containerd.File, cfg containerd.ImageConfig) error {
	return containerd.BuildImage(w, ref, files, cfg)
}
