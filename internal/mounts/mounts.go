// Package mounts reads the mount table of this process's mount namespace.
// It owns no mounts and changes nothing.
package mounts

import (
	"os"
	"sort"
	"strings"
)

// Under lists the mount points at or below dir, deepest first, so that
// unmounting them in order never meets a busy parent.
func Under(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := f[4]; mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}
