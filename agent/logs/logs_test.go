package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var t0 = time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)

func TestParseLine(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Line
		wantErr bool
	}{
		"full stdout line": {in: "2026-11-26T07:00:00.123456789Z stdout F hello\n",
			want: Line{Time: t0.Add(123456789), Stream: Stdout, Content: []byte("hello\n")}},
		"partial stderr line keeps no newline": {in: "2026-11-26T07:00:00Z stderr P part",
			want: Line{Time: t0, Stream: Stderr, Partial: true, Content: []byte("part")}},
		"empty full line": {in: "2026-11-26T07:00:00Z stdout F\n",
			want: Line{Time: t0, Stream: Stdout, Content: []byte("\n")}},
		"tag with attributes": {in: "2026-11-26T07:00:00Z stdout F:x=y a b\n",
			want: Line{Time: t0, Stream: Stdout, Content: []byte("a b\n")}},
		"content with spaces": {in: "2026-11-26T07:00:00Z stdout F  two  spaces \n",
			want: Line{Time: t0, Stream: Stdout, Content: []byte(" two  spaces \n")}},
		"time zone offset": {in: "2026-11-26T09:00:00+02:00 stdout F x\n",
			want: Line{Time: t0.In(time.FixedZone("", 7200)), Stream: Stdout, Content: []byte("x\n")}},
		"no timestamp":   {in: "garbage\n", wantErr: true},
		"bad timestamp":  {in: "yesterday stdout F x\n", wantErr: true},
		"unknown stream": {in: "2026-11-26T07:00:00Z stdin F x\n", wantErr: true},
		"no stream":      {in: "2026-11-26T07:00:00Z\n", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseLine([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if !got.Time.Equal(tc.want.Time) {
				t.Errorf("time = %s, want %s", got.Time, tc.want.Time)
			}
			got.Time = tc.want.Time
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// writeLog writes lines "line <i>" one second apart starting at t0, on
// stdout for even i and stderr for odd i.
func writeLog(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		s := Stdout
		if i%2 == 1 {
			s = Stderr
		}
		if _, err := f.WriteString(FormatLine(t0.Add(time.Duration(i)*time.Second), s, "line "+itoa(i), false)); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(i int) string { return fmt.Sprintf("%02d", i) }

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString("line " + itoa(i) + "\n")
	}
	return b.String()
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeLog(t, path, 0, 10)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("not a log line\n")
	_, _ = f.WriteString(FormatLine(t0.Add(10*time.Second), Stdout, "split ", true))
	_, _ = f.WriteString(FormatLine(t0.Add(10*time.Second), Stdout, "line", false))
	_ = f.Close()
	tests := map[string]struct {
		opts Options
		want string
	}{
		"everything":                 {opts: Options{Tail: -1}, want: lines(0, 10) + "split line\n"},
		"tail 3":                     {opts: Options{Tail: 3}, want: "split line\n"},
		"tail counts raw file lines": {opts: Options{Tail: 4}, want: lines(9, 10) + "split line\n"},
		"tail 0":                     {opts: Options{Tail: 0}, want: ""},
		"tail beyond the file":       {opts: Options{Tail: 100}, want: lines(0, 10) + "split line\n"},
		"since":                      {opts: Options{Tail: -1, Since: t0.Add(8 * time.Second)}, want: lines(8, 10) + "split line\n"},
		"since and tail":             {opts: Options{Tail: 6, Since: t0.Add(8 * time.Second)}, want: lines(8, 10) + "split line\n"},
		"stdout only":                {opts: Options{Tail: -1, Stream: Stdout}, want: "line 00\nline 02\nline 04\nline 06\nline 08\nsplit line\n"},
		"limit bytes cuts a line":    {opts: Options{Tail: -1, LimitBytes: 11}, want: "line 00\nlin"},
		"timestamps": {opts: Options{Tail: 2, Timestamps: true},
			want: "2026-11-26T07:00:10.000000000Z split 2026-11-26T07:00:10.000000000Z line\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Read(context.Background(), path, tc.opts, &out, nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailOffsetAcrossBlocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	f, _ := os.Create(path)
	long := strings.Repeat("x", 50*1024)
	for i := range 3 {
		_, _ = f.WriteString(FormatLine(t0, Stdout, long+itoa(i), false))
	}
	_ = f.Close()
	var out bytes.Buffer
	if err := Read(context.Background(), path, Options{Tail: 2}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if want := long + "01\n" + long + "02\n"; out.String() != want {
		t.Errorf("got %d bytes, want the last two lines (%d bytes)", out.Len(), len(want))
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFollowAcrossRotationUntilTheContainerEnds(t *testing.T) {
	old := StateCheckPeriod
	StateCheckPeriod = 20 * time.Millisecond
	defer func() { StateCheckPeriod = old }()
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeLog(t, path, 0, 3)
	var running atomic.Bool
	running.Store(true)
	out := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- Read(context.Background(), path, Options{Tail: 1, Follow: true}, out, func(context.Context) bool { return running.Load() })
	}()
	waitFor(t, "the tail", func() bool { return out.String() == lines(2, 3) })
	writeLog(t, path, 3, 5)
	waitFor(t, "new lines", func() bool { return out.String() == lines(2, 5) })

	// Rotate as the Rotator does: the old file gets one more line before
	// the runtime reopens, then the new file is written.
	writeLog(t, path, 5, 6)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path+".1", 6, 7)
	writeLog(t, path, 7, 9)
	waitFor(t, "lines after the rotation", func() bool { return out.String() == lines(2, 9) })

	select {
	case err := <-errc:
		t.Fatalf("follow ended while the container runs: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	writeLog(t, path, 9, 10)
	running.Store(false)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end after the container ended")
	}
	if diff := cmp.Diff(lines(2, 10), out.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFollowEndsWithContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeLog(t, path, 0, 1)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Read(ctx, path, Options{Tail: -1, Follow: true}, io.Discard, nil) }()
	cancel()
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

type fakeRotationRuntime struct {
	path     string
	reopened int
	failOpen bool
}

func (f *fakeRotationRuntime) ListContainers(context.Context, *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error) {
	return []*runtimeapi.Container{{Id: "c1"}}, nil
}

func (f *fakeRotationRuntime) ContainerStatus(context.Context, string, bool) (*runtimeapi.ContainerStatusResponse, error) {
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: "c1", LogPath: f.path}}, nil
}

func (f *fakeRotationRuntime) ReopenContainerLog(context.Context, string) error {
	if f.failOpen {
		return os.ErrPermission
	}
	f.reopened++
	return os.WriteFile(f.path, nil, 0o644)
}

func TestRotateKeepsMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	rt := &fakeRotationRuntime{path: path}
	now := t0
	r := &Rotator{Runtime: rt, MaxSize: 100, MaxFiles: 3, Interval: time.Second, Now: func() time.Time { return now }}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		writeLog(t, path, 0, 2) // 2 lines < 100 bytes: no rotation yet.
		if err := r.RotateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		writeLog(t, path, 0, 4) // Now above 100 bytes.
		now = now.Add(time.Second)
		if err := r.RotateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		if rt.reopened != i+1 {
			t.Fatalf("reopened %d times after %d rotations", rt.reopened, i+1)
		}
		rotated, _ := Rotated(path)
		if want := min(i+1, 2); len(rotated) != want {
			t.Fatalf("after rotation %d: %d rotated files %v, want %d", i+1, len(rotated), rotated, want)
		}
		if st, _ := os.Stat(path); st.Size() != 0 {
			t.Fatalf("the current log has %d bytes after a rotation", st.Size())
		}
	}
	rotated, _ := Rotated(path)
	if !strings.HasSuffix(rotated[1], "20261126-070005.000000000") {
		t.Errorf("newest rotated file %s, want the fifth rotation's", rotated[1])
	}
}

func TestRotateRestoresTheLogWhenReopenFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	writeLog(t, path, 0, 10)
	r := &Rotator{Runtime: &fakeRotationRuntime{path: path, failOpen: true}, MaxSize: 10, MaxFiles: 2, Interval: time.Second}
	if err := r.RotateAll(context.Background()); err == nil {
		t.Fatal("no error when the runtime cannot reopen the log")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the log is gone: %v", err)
	}
	if rotated, _ := Rotated(path); len(rotated) != 0 {
		t.Errorf("rotated files %v remain", rotated)
	}
}

func TestValidate(t *testing.T) {
	for _, r := range []Rotator{{MaxSize: 0, MaxFiles: 2, Interval: 1}, {MaxSize: 1, MaxFiles: 1, Interval: 1}, {MaxSize: 1, MaxFiles: 2}} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v validates", r)
		}
	}
}
