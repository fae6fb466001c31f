package agent_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/gomega"

	"github.com/skiff-dev/skiff/agent/containerd"
)

// registry is a docker-registry (Debian's distribution 2.8) this suite
// starts on 127.0.0.1; it stops only that process, by PID.
type registry struct {
	host string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRegistry starts a registry on a free loopback port, or returns nil
// when docker-registry is not installed.
func startRegistry(dir string) *registry {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	host := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	Expect(os.MkdirAll(filepath.Join(dir, "data"), 0o755)).To(Succeed())
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	Expect(os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644)).To(Succeed())
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	Expect(err).NotTo(HaveOccurred())
	r := &registry{host: host, cmd: exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml")), done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	Expect(r.cmd.Start()).To(Succeed())
	go func() { _ = r.cmd.Wait(); _ = logf.Close(); close(r.done) }()
	Eventually(func() error {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	return r
}

func (r *registry) stop() {
	if r == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// push uploads a one-layer OCI image of files as <host>/<repo>:<tag>.
func (r *registry) push(repo, tag string, files []containerd.File, cfg containerd.ImageConfig) error {
	config, layer, _, err := containerd.Layer(files, cfg)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layer); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	base := "http://" + r.host + "/v2/" + repo
	for _, blob := range [][]byte{config, gz.Bytes()} {
		resp, err := http.Post(base+"/blobs/uploads/", "application/octet-stream", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			return fmt.Errorf("starting an upload: %s", resp.Status)
		}
		if !strings.HasPrefix(loc, "http") {
			loc = "http://" + r.host + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+digest(blob), bytes.NewReader(blob))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("uploading a blob: %s: %s", resp.Status, body)
		}
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(gz.Bytes()), "size": gz.Len()}},
	})
	if err != nil {
		return err
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/manifests/"+tag, bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("putting the manifest: %s: %s", resp.Status, body)
	}
	return nil
}
