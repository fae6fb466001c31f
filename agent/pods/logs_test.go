package pods

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveLogsRemovesOnlyThatPodsDirectory(t *testing.T) {
	root := t.TempDir()
	gone := filepath.Join(root, "logs", "ns_web_uid-1", "app")
	kept := filepath.Join(root, "logs", "ns_web_uid-2", "app")
	for _, d := range []string{gone, kept} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "0.log"), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := NewNode(Options{RootDir: root})
	if err := n.removeLogs("uid-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(gone)); !os.IsNotExist(err) {
		t.Errorf("the removed pod's logs remain: %v", err)
	}
	if _, err := os.Stat(filepath.Join(kept, "0.log")); err != nil {
		t.Errorf("another pod's logs are gone: %v", err)
	}
}
