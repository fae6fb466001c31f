package imagebuild

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/skiff-dev/skiff/agent/containerd"
)

func TestHostFilesAndMerge(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "www", "css"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "www", "index.html"), []byte("hello\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "www", "css", "site.css"), []byte("body{}"), 0o600))
	must(os.Symlink("index.html", filepath.Join(dir, "www", "home.html")))

	files, err := HostFiles(filepath.Join(dir, "www"), "/srv/www/")
	must(err)
	got := map[string]string{}
	for _, f := range files {
		kind := "file"
		switch {
		case f.Mode&os.ModeDir != 0:
			kind = "dir"
		case f.Mode&os.ModeSymlink != 0:
			kind = "link->" + f.Link
		}
		got[f.Path] = kind + " " + f.Mode.Perm().String() + " " + string(f.Data)
	}
	want := map[string]string{
		"srv/www":              "dir -rwxr-xr-x ",
		"srv/www/css":          "dir -rwxr-xr-x ",
		"srv/www/css/site.css": "file -rw------- body{}",
		"srv/www/home.html":    "link->index.html -rwxrwxrwx ",
		"srv/www/index.html":   "file -rw-r--r-- hello\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	if _, err := HostFiles(filepath.Join(dir, "www"), "relative"); err == nil {
		t.Error("a relative destination was accepted")
	}

	merged := Merge(
		[]containerd.File{{Path: "etc/motd", Mode: 0o644, Data: []byte("base")}, {Path: "bin/sh", Mode: 0o755}},
		[]containerd.File{{Path: "/etc/motd", Mode: 0o600, Data: []byte("added")}},
	)
	if len(merged) != 2 || string(merged[0].Data) != "added" || merged[0].Path != "etc/motd" {
		t.Errorf("later files must replace earlier ones at the same path: %+v", merged)
	}
}

func TestWriteBusyboxArchive(t *testing.T) {
	files, cfg, err := Busybox()
	if err != nil {
		t.Skipf("no static busybox here: %v", err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, "skiff.local/test:v1", files, cfg); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	var layer []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if filepath.Base(h.Name) == "layer.tar" {
			layer, _ = io.ReadAll(tr)
		}
	}
	if len(names) != 3 || names[2] != "manifest.json" {
		t.Fatalf("archive entries: %v", names)
	}
	found := map[string]bool{}
	lr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = true
	}
	for _, p := range []string{"bin/busybox", "bin/httpd", "bin/nc", "bin/sh", "etc/passwd", "tmp/"} {
		if !found[p] {
			t.Errorf("layer lacks %s", p)
		}
	}
}
