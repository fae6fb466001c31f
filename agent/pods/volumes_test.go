package pods

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if err := writeAtomic(dir, map[string]file{"color": {[]byte("blue"), 0o644}, "sub/size": {[]byte("L"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if read("color") != "blue" || read("sub/size") != "L" {
		t.Fatalf("got %q %q", read("color"), read("sub/size"))
	}
	if fi, _ := os.Stat(filepath.Join(dir, "sub/size")); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// The same contents write nothing.
	if err := writeAtomic(dir, map[string]file{"color": {[]byte("blue"), 0o644}, "sub/size": {[]byte("L"), 0o600}}); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.Readlink(filepath.Join(dir, "..data")); again != first {
		t.Errorf("unchanged contents were rewritten: %s -> %s", first, again)
	}
	// New contents swap ..data; a removed key disappears; the old directory goes.
	if err := writeAtomic(dir, map[string]file{"color": {[]byte("green"), 0o644}}); err != nil {
		t.Fatal(err)
	}
	if read("color") != "green" {
		t.Errorf("color %q", read("color"))
	}
	if _, err := os.Lstat(filepath.Join(dir, "sub")); !os.IsNotExist(err) {
		t.Errorf("removed key still present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("old data directory %s still present", first)
	}
}

func TestTailLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "0.log")
	log := "2026-01-01T00:00:00.000000000Z stdout F starting\n2026-01-01T00:00:01.000000000Z stderr F boom: no config\n"
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := tailLog(p), "starting\nboom: no config"; got != want {
		t.Errorf("tailLog = %q, want %q", got, want)
	}
	if got := tailLog(filepath.Join(t.TempDir(), "missing.log")); got != "" {
		t.Errorf("a missing log gives %q", got)
	}
}
