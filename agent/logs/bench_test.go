package logs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchLog writes a 10 MiB CRI log of 100-byte lines, about what the
// default rotation keeps in the current file.
func benchLog(b *testing.B) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "0.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	line := FormatLine(time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC), Stdout, strings.Repeat("x", 100-40), false)
	var size int64
	for size < DefaultMaxSize {
		n, _ := f.WriteString(line)
		size += int64(n)
	}
	_ = f.Close()
	return path, size
}

// BenchmarkReadWholeLog reads a full 10 MiB log (kubectl logs without
// options); the MB/s figure is the parse and copy rate.
func BenchmarkReadWholeLog(b *testing.B) {
	path, size := benchLog(b)
	b.SetBytes(size)
	for b.Loop() {
		if err := Read(context.Background(), path, Options{Tail: -1}, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadTail100 reads the last 100 lines of a 10 MiB log.
func BenchmarkReadTail100(b *testing.B) {
	path, _ := benchLog(b)
	for b.Loop() {
		if err := Read(context.Background(), path, Options{Tail: 100}, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}
