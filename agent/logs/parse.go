package logs

import (
	"bytes"
	"fmt"
	"time"
)

// Stream is the stream a log line came from.
type Stream string

// The streams of the CRI log format.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Tags of the CRI log format.
const (
	tagPartial = 'P'
	tagFull    = 'F'
)

// Line is one parsed line of a CRI log file.
type Line struct {
	// Time is when the runtime received the content.
	Time time.Time
	// Stream is stdout or stderr.
	Stream Stream
	// Partial tells that the content continues on the next line of the
	// same stream: the runtime split a long line.
	Partial bool
	// Content is the text, with its newline when the line is full.
	Content []byte
}

// ParseLine parses one line of a CRI log file, with or without its ending
// newline. The content of a full line always ends in a newline, as the
// container wrote it; Content shares memory with b.
func ParseLine(b []byte) (Line, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	var l Line
	ts, rest, ok := bytes.Cut(b, []byte(" "))
	if !ok {
		return l, fmt.Errorf("log line %q has no timestamp", truncate(b))
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return l, fmt.Errorf("log line %q: timestamp: %w", truncate(b), err)
	}
	l.Time = t
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return l, fmt.Errorf("log line %q has no stream", truncate(b))
	}
	switch Stream(stream) {
	case Stdout, Stderr:
		l.Stream = Stream(stream)
	default:
		return l, fmt.Errorf("log line %q: unknown stream %q", truncate(b), stream)
	}
	// The tag may carry more attributes after a colon; only the first
	// letter says partial or full. Old runtimes wrote no tag at all.
	tag, content, ok := bytes.Cut(rest, []byte(" "))
	switch {
	case ok && len(tag) > 0 && tag[0] == tagPartial:
		l.Partial = true
		l.Content = content
	case ok && len(tag) > 0 && tag[0] == tagFull:
		l.Content = withNewline(content)
	case len(rest) == 1 && (rest[0] == tagFull || rest[0] == tagPartial):
		// An empty line: "<time> stdout F".
		l.Partial = rest[0] == tagPartial
		if !l.Partial {
			l.Content = []byte("\n")
		}
	default:
		l.Content = withNewline(rest)
	}
	return l, nil
}

// withNewline returns a copy of b with a newline: b may share its array
// with the bytes that follow it in a reader's buffer.
func withNewline(b []byte) []byte {
	out := make([]byte, len(b)+1)
	copy(out, b)
	out[len(b)] = '\n'
	return out
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// FormatLine renders a line in the CRI log format, for tests and tools.
func FormatLine(t time.Time, s Stream, content string, partial bool) string {
	tag := string(tagFull)
	if partial {
		tag = string(tagPartial)
	}
	return t.UTC().Format(time.RFC3339Nano) + " " + string(s) + " " + tag + " " + content + "\n"
}
