package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/internal/imagebuild"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build images and import them into the local node's containerd, without Docker or a registry",
	}
	cmd.AddCommand(newImageBuildCommand(), newImageImportCommand())
	return cmd
}

type imageBuildOptions struct {
	dataDir     string
	fromBusybox bool
	adds        []string
	cmd         string
	entrypoint  string
	env         []string
	workdir     string
	output      string
}

func newImageBuildCommand() *cobra.Command {
	o := imageBuildOptions{}
	cmd := &cobra.Command{
		Use:   "build NAME:TAG --from-busybox [--add SRC:DEST]... [--cmd CMD]",
		Short: "Build a one-layer image from busybox-static and host files, and import it into the node",
		Long: `build makes an image from the root file system of busybox-static (a shell and
every busybox applet: httpd, nc, wget, ...) plus files and directories of this
machine, and imports it into the containerd of the local node of "skiff up",
where pods use it at once (give it a tag other than latest, so the default
imagePullPolicy IfNotPresent keeps it). With -o it writes a docker-archive
instead, which "skiff image import" or "ctr images import" reads.`,
		Example: `  skiff image build skiff.local/hello:v1 --from-busybox \
      --add examples/hello/www:/www --cmd "httpd -f -v -p 8080 -h /www"
  skiff image build tools:v1 --from-busybox -o tools.tar`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageBuild(cmd.Context(), cmd.OutOrStdout(), args[0], o)
		},
	}
	addDataDirFlag(cmd, &o.dataDir)
	f := cmd.Flags()
	f.BoolVar(&o.fromBusybox, "from-busybox", false, "start from busybox-static's root file system (Debian package busybox-static)")
	f.StringArrayVar(&o.adds, "add", nil, "add a host file or directory at an absolute path in the image, as SRC:DEST (repeatable)")
	f.StringVar(&o.cmd, "cmd", "", `default command of the image, split like a shell would ("httpd -f -p 8080")`)
	f.StringVar(&o.entrypoint, "entrypoint", "", "entrypoint of the image, split like a shell would")
	f.StringArrayVar(&o.env, "env", nil, "environment variable NAME=VALUE of the image (repeatable)")
	f.StringVar(&o.workdir, "workdir", "", "working directory of the image")
	f.StringVarP(&o.output, "output", "o", "", "write a docker-archive to this file instead of importing into the node")
	return cmd
}

func runImageBuild(ctx context.Context, out io.Writer, ref string, o imageBuildOptions) error {
	if !o.fromBusybox {
		return fmt.Errorf("--from-busybox is required: it is the only base image skiff builds from (import others with `skiff image import`)")
	}
	if err := checkImageRef(ref); err != nil {
		return err
	}
	files, cfg, err := imagebuild.Busybox()
	if err != nil {
		return err
	}
	layers := [][]containerd.File{files}
	for _, a := range o.adds {
		src, dest, ok := strings.Cut(a, ":")
		if !ok || src == "" || dest == "" {
			return fmt.Errorf("--add %q: want SRC:DEST, a host path and an absolute path in the image", a)
		}
		added, err := imagebuild.HostFiles(src, dest)
		if err != nil {
			return fmt.Errorf("--add %q: %w", a, err)
		}
		layers = append(layers, added)
	}
	if o.cmd != "" {
		if cfg.Cmd, err = splitWords(o.cmd); err != nil {
			return fmt.Errorf("--cmd: %w", err)
		}
	}
	if o.entrypoint != "" {
		if cfg.Entrypoint, err = splitWords(o.entrypoint); err != nil {
			return fmt.Errorf("--entrypoint: %w", err)
		}
	}
	cfg.Env = append(cfg.Env, o.env...)
	cfg.WorkingDir = o.workdir

	p := &progress{out: out, start: time.Now(), interval: 10 * time.Second}
	if o.output != "" {
		return p.step(fmt.Sprintf("Building %s into %s", ref, o.output), func() error {
			return writeArchive(o.output, ref, imagebuild.Merge(layers...), cfg)
		})
	}
	c := cluster{dir: o.dataDir}
	sock, err := nodeContainerd(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "skiff-image-*.tar")
	if err != nil {
		return err
	}
	archive := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(archive)
	return p.step(fmt.Sprintf("Building %s and importing it into the node's containerd", ref), func() error {
		if err := writeArchive(archive, ref, imagebuild.Merge(layers...), cfg); err != nil {
			return err
		}
		return containerd.ImportImage(ctx, sock, archive)
	})
}

func newImageImportCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "import ARCHIVE",
		Short: "Import a docker-archive or OCI archive (docker save, skiff image build -o) into the local node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sock, err := nodeContainerd(cluster{dir: dataDir})
			if err != nil {
				return err
			}
			p := &progress{out: cmd.OutOrStdout(), start: time.Now(), interval: 10 * time.Second}
			return p.step("Importing "+args[0]+" into the node's containerd", func() error {
				return containerd.ImportImage(cmd.Context(), sock, args[0])
			})
		},
	}
	addDataDirFlag(cmd, &dataDir)
	return cmd
}

// nodeContainerd returns the socket of the local node's containerd, or
// says how to start it.
func nodeContainerd(c cluster) (string, error) {
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return "", err
	}
	c.dir = dir
	sock := c.containerdSock()
	if _, err := os.Stat(sock); err != nil {
		return "", fmt.Errorf("no node containerd at %s: start the local cluster with `skiff up` (or `make run`) first, or pass its --data-dir", sock)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("importing into the node's containerd needs root: sudo skiff image ...")
	}
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", fmt.Errorf("the node's containerd at %s does not answer (%v): is `skiff up` running?", sock, err)
	}
	_ = conn.Close()
	return sock, nil
}

func writeArchive(path, ref string, files []containerd.File, cfg containerd.ImageConfig) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := imagebuild.Write(f, ref, files, cfg); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// checkImageRef refuses references containerd would store under a name
// pods cannot match: the reference needs a tag, and "latest" would make
// the default pull policy Always, which pulls from a registry.
func checkImageRef(ref string) error {
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	switch {
	case name == "" || strings.ContainsAny(ref, " @"):
		return fmt.Errorf("image %q: want NAME:TAG, such as skiff.local/hello:v1", ref)
	case tag == "":
		return fmt.Errorf("image %q has no tag: add one, such as %s:v1 (pods pull untagged and :latest images from a registry)", ref, ref)
	case tag == "latest":
		return fmt.Errorf("image %q: use a tag other than latest (pods always pull :latest from a registry)", ref)
	}
	return nil
}

// splitWords splits s into words as a shell does for plain words, single
// and double quotes and backslash escapes (no expansion).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("unterminated quote or escape in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
