package logs

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TimestampFormat is how Read prints a line's time with Options.Timestamps:
// RFC 3339 with nanoseconds of fixed width, as the kubelet.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// StateCheckPeriod is how often a follow that sees no new lines asks
// whether the container still runs.
var StateCheckPeriod = time.Second

// Options select what Read writes, as core/v1 PodLogOptions.
type Options struct {
	// Tail starts with the last Tail lines of the file; negative means
	// from the beginning.
	Tail int64
	// Since skips lines the runtime received before it; zero keeps all.
	Since time.Time
	// Timestamps prefixes every line with its time.
	Timestamps bool
	// LimitBytes stops after that many bytes are written; 0 means no limit.
	LimitBytes int64
	// Follow keeps writing new lines until ctx ends or the container ends.
	Follow bool
	// Stream keeps only one stream; "" keeps both.
	Stream Stream
}

// Running tells whether the container still runs. A follow ends, once it
// has read everything, when Running says no.
type Running func(ctx context.Context) bool

// errLimit ends a read that wrote LimitBytes.
var errLimit = errors.New("log byte limit reached")

// Read writes the log file at path to w as the options say. In follow mode
// it keeps reading across a rotation (the file renamed and a new one
// created at path) and returns once the container has ended and every line
// is written, or when ctx ends. Lines that do not parse are skipped.
func Read(ctx context.Context, path string, opts Options, w io.Writer, running Running) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if opts.Tail >= 0 {
		off, err := tailOffset(f, opts.Tail)
		if err != nil {
			return err
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return err
		}
	}
	lw := &lineWriter{w: w, opts: opts, left: opts.LimitBytes}
	r := bufio.NewReaderSize(f, 64*1024)
	var watcher *fsnotify.Watcher
	if opts.Follow {
		// Watch the directory: writes to the file and its replacement by
		// a rotation both show there.
		if watcher, err = fsnotify.NewWatcher(); err == nil {
			defer func() { _ = watcher.Close() }()
			if err := watcher.Add(filepath.Dir(path)); err != nil {
				_ = watcher.Close()
				watcher = nil
			}
		}
	}
	var line []byte
	finishing := false
	tick := time.NewTicker(StateCheckPeriod)
	defer tick.Stop()
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		switch {
		case err == nil:
			if werr := lw.write(line); werr != nil {
				return done(werr)
			}
			line = line[:0]
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case !errors.Is(err, io.EOF):
			return err
		}
		// At the end of what was written so far.
		if !opts.Follow {
			if len(line) > 0 {
				return done(lw.write(line))
			}
			return nil
		}
		if next, ok := replaced(f, path); ok {
			// Rotated: everything of the old file is read; go on with the
			// new one from its start. An incomplete last line of the old
			// file is complete as it is.
			if len(line) > 0 {
				if werr := lw.write(line); werr != nil {
					_ = next.Close()
					return done(werr)
				}
				line = line[:0]
			}
			_ = f.Close()
			f = next
			r.Reset(f)
			continue
		}
		if finishing {
			if len(line) > 0 {
				return done(lw.write(line))
			}
			return nil
		}
		var events <-chan fsnotify.Event
		if watcher != nil {
			events = watcher.Events
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-events:
			// Something changed in the directory: read on. Many writes
			// come as many events; the next EOF waits again.
		case <-tick.C:
			if running != nil && !running(ctx) {
				// Read what the container wrote before it ended, then stop.
				finishing = true
			}
		}
	}
}

func done(err error) error {
	if errors.Is(err, errLimit) {
		return nil
	}
	return err
}

// replaced opens the file now at path when it is not the open file f.
func replaced(f *os.File, path string) (*os.File, bool) {
	cur, err := f.Stat()
	if err != nil {
		return nil, false
	}
	st, err := os.Stat(path)
	if err != nil || os.SameFile(cur, st) {
		return nil, false
	}
	next, err := os.Open(path)
	if err != nil {
		return nil, false
	}
	return next, true
}

// tailOffset is the offset of the n-th last line of f: the position after
// its (n+1)-th last newline. Bytes after the last newline are a line still
// being written and come on top of the n lines.
func tailOffset(f *os.File, n int64) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const block = 32 * 1024
	buf := make([]byte, block)
	end := st.Size()
	var seen int64
	for end > 0 {
		start := max(0, end-block)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			seen++
			if seen == n+1 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// lineWriter writes parsed lines to w as the options say.
type lineWriter struct {
	w    io.Writer
	opts Options
	// left is how many bytes may still be written when opts.LimitBytes > 0.
	left int64
	buf  []byte
}

func (lw *lineWriter) write(raw []byte) error {
	l, err := ParseLine(raw)
	if err != nil {
		return nil // Not a log line: skip it, as the kubelet does.
	}
	if !lw.opts.Since.IsZero() && l.Time.Before(lw.opts.Since) {
		return nil
	}
	if lw.opts.Stream != "" && l.Stream != lw.opts.Stream {
		return nil
	}
	out := lw.buf[:0]
	if lw.opts.Timestamps {
		out = l.Time.AppendFormat(out, TimestampFormat)
		out = append(out, ' ')
	}
	out = append(out, l.Content...)
	lw.buf = out
	limited := false
	if lw.opts.LimitBytes > 0 {
		if int64(len(out)) >= lw.left {
			out = out[:lw.left]
			limited = true
		}
		lw.left -= int64(len(out))
	}
	if _, err := lw.w.Write(out); err != nil {
		return err
	}
	if limited {
		return errLimit
	}
	return nil
}
