package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// What the API server did for one measured run, from its own metrics: the
// benchmarks print the requests each side made per pod, and how long the
// API server took to serve them, so that a difference in time can be
// traced to a difference in work. With SKIFF_BENCH_PPROF=DIR they also
// save a CPU profile of kube-apiserver during each measured run
// (kube-apiserver --debug-socket-path), for `go tool pprof`.

// requestKey is one kind of API request.
type requestKey struct{ verb, group, resource, subresource string }

func (k requestKey) String() string {
	r := k.resource
	if k.subresource != "" {
		r += "/" + k.subresource
	}
	if k.group != "" {
		r += "." + k.group
	}
	return k.verb + " " + r
}

// requestTotals are cumulative counts and serving times by request kind.
type requestTotals map[requestKey]struct{ count, seconds float64 }

var metricLine = regexp.MustCompile(`^(apiserver_request_total|apiserver_request_duration_seconds_sum)\{([^}]*)\} ([0-9.e+-]+)$`)
var metricLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// allocKey holds, in count, the bytes the API server has allocated: a
// measure of its work that, unlike CPU time, hardly depends on what
// else runs on the machine.
var allocKey = requestKey{verb: "ALLOC"}

// conflictKey counts the writes refused with 409 Conflict (a stale
// resourceVersion), which their writer then retries.
var conflictKey = requestKey{verb: "CONFLICT"}

// scrapeRequests reads the API server's request counters.
func scrapeRequests(ctx context.Context, cs kubernetes.Interface) (requestTotals, error) {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	out := requestTotals{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_alloc_bytes_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			out[allocKey] = struct{ count, seconds float64 }{count: f}
			continue
		}
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range metricLabel.FindAllStringSubmatch(m[2], -1) {
			labels[l[1]] = l[2]
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		k := requestKey{verb: labels["verb"], group: labels["group"], resource: labels["resource"], subresource: labels["subresource"]}
		e := out[k]
		if m[1] == "apiserver_request_total" {
			e.count += v
			if labels["code"] == "409" {
				c := out[conflictKey]
				c.count += v
				out[conflictKey] = c
			}
		} else {
			e.seconds += v
		}
		out[k] = e
	}
	return out, sc.Err()
}

// writeSummary says which writes happened between before and after, per
// pod, and the API server's time serving all writes and all reads.
func writeSummary(before, after requestTotals, pods int) string {
	type row struct {
		k     requestKey
		count float64
	}
	var rows []row
	var writes, writeSecs, reads, readSecs float64
	for k, a := range after {
		b := before[k]
		n, s := a.count-b.count, a.seconds-b.seconds
		if n < 0.5 {
			continue
		}
		switch k.verb {
		case "ALLOC", "CONFLICT":
		case "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY":
			writes += n
			writeSecs += s
			rows = append(rows, row{k, n})
		case "WATCH", "WATCHLIST", "CONNECT":
			// Long-running: their duration is not work.
		default:
			reads += n
			readSecs += s
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].count > rows[j].count })
	var parts []string
	for _, r := range rows {
		if r.count/float64(pods) < 0.05 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", r.k, r.count/float64(pods)))
	}
	return fmt.Sprintf("writes per pod %.2f (%s), %.2f refused with 409 Conflict; API server allocated %.0f KiB per pod, busy %.1fs on %d writes, %.1fs on %d reads",
		writes/float64(pods), strings.Join(parts, ", "), (after[conflictKey].count-before[conflictKey].count)/float64(pods), (after[allocKey].count-before[allocKey].count)/1024/float64(pods),
		writeSecs, int(writes), readSecs, int(reads))
}

// cpuSeconds are the CPU seconds (user and system) used so far by this
// process ("bench": skiff's controllers and simulated nodes when they run
// here, and the benchmark's own clients) and by each child process by
// name (kube-apiserver, etcd, kube-controller-manager, kube-scheduler,
// kwok): the CPU a phase costs does not depend on what else runs on the
// machine, its wall time does.
func cpuSeconds() map[string]float64 {
	out := map[string]float64{}
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15)
		end := bytes.LastIndexByte(raw, ')')
		start := bytes.IndexByte(raw, '(')
		if start < 0 || end < start {
			continue
		}
		comm := string(raw[start+1 : end])
		f := strings.Fields(string(raw[end+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != self && ppid != self {
			continue
		}
		if pid == self {
			comm = "bench"
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		out[comm] += (ut + st) / 100 // USER_HZ
	}
	return out
}

func cpuSummary(before, after map[string]float64) string {
	var parts []string
	for _, name := range []string{"kube-apiserver", "etcd", "bench", "kube-controller", "kube-scheduler", "kwok"} {
		if d := after[name] - before[name]; d >= 0.05 {
			parts = append(parts, fmt.Sprintf("%s %.1fs", name, d))
		}
	}
	return "CPU " + strings.Join(parts, ", ")
}

// apiWatch records the API server's requests, and with SKIFF_BENCH_PPROF
// its CPU profile, over one measured run.
type apiWatch struct {
	cs      kubernetes.Interface
	before  requestTotals
	cpu     map[string]float64
	profile chan error
}

// watchAPI starts recording; name names the profile file.
func (e *workloadEnv) watchAPI(ctx context.Context, b *testing.B, name string) *apiWatch {
	b.Helper()
	before, err := scrapeRequests(ctx, e.cs)
	if err != nil {
		b.Fatal(err)
	}
	w := &apiWatch{cs: e.cs, before: before, cpu: cpuSeconds()}
	if dir := os.Getenv("SKIFF_BENCH_PPROF"); dir != "" && e.debugSocket != "" {
		seconds := envInt("SKIFF_BENCH_PPROF_SECONDS", 15)
		w.profile = make(chan error, 1)
		go func() { w.profile <- saveProfile(ctx, e.debugSocket, filepath.Join(dir, name+".pprof"), seconds) }()
	}
	return w
}

// done prints what the API server did for pods pods since watchAPI.
func (w *apiWatch) done(ctx context.Context, b *testing.B, what string, pods int) {
	b.Helper()
	after, err := scrapeRequests(ctx, w.cs)
	if err != nil {
		b.Fatal(err)
	}
	cpu := cpuSeconds()
	fmt.Printf("    %s: %s\n      %s\n", what, writeSummary(w.before, after, pods), cpuSummary(w.cpu, cpu))
	w.before, w.cpu = after, cpu
	if w.profile != nil {
		if err := <-w.profile; err != nil {
			b.Logf("CPU profile of kube-apiserver: %v", err)
		}
		w.profile = nil
	}
}

// saveProfile writes a CPU profile of seconds of kube-apiserver's work,
// read from its debug socket, to path.
func saveProfile(ctx context.Context, socket, path string, seconds int) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}, Timeout: time.Duration(seconds+30) * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://kube-apiserver/debug/pprof/profile?seconds=%d", seconds), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/profile: %s", resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
