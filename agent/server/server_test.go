package server

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/agent/logs"
)

var now = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func TestLogOptions(t *testing.T) {
	tests := map[string]struct {
		query    string
		want     logs.Options
		previous bool
		wantErr  string
	}{
		"defaults":        {query: "", want: logs.Options{Tail: -1}},
		"all flags":       {query: "follow=true&previous=1&timestamps=true&tailLines=10&limitBytes=100", want: logs.Options{Tail: 10, Follow: true, Timestamps: true, LimitBytes: 100}, previous: true},
		"since seconds":   {query: "sinceSeconds=60", want: logs.Options{Tail: -1, Since: now.Add(-time.Minute)}},
		"since time":      {query: "sinceTime=2026-11-26T07:00:00Z", want: logs.Options{Tail: -1, Since: now.Add(-time.Hour)}},
		"stdout stream":   {query: "stream=Stdout", want: logs.Options{Tail: -1, Stream: logs.Stdout}},
		"negative tail":   {query: "tailLines=-1", wantErr: "tailLines: Invalid value: -1: must be greater than or equal to 0"},
		"zero limit":      {query: "limitBytes=0", wantErr: "limitBytes: Invalid value: 0: must be greater than 0"},
		"zero since":      {query: "sinceSeconds=0", wantErr: "sinceSeconds: Invalid value: 0: must be greater than 0"},
		"both sinces":     {query: "sinceSeconds=5&sinceTime=2026-11-26T07:00:00Z", wantErr: "sinceTime: Forbidden: at most one of sinceTime or sinceSeconds"},
		"bad bool":        {query: "follow=yes", wantErr: `follow: Invalid value: "yes": must be true or false`},
		"bad stream":      {query: "stream=stdin", wantErr: `stream: Unsupported value: "stdin"`},
		"stream and tail": {query: "stream=Stderr&tailLines=1", wantErr: "stream: Forbidden: tailLines is incompatible"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, previous, err := LogOptions(q, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if previous != tc.previous {
				t.Errorf("previous = %v, want %v", previous, tc.previous)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExecOptions(t *testing.T) {
	tests := map[string]struct {
		query   string
		want    string
		wantErr string
	}{
		"command with arguments": {query: "command=sh&command=-c&command=echo+hi&stdout=1&stderr=true", want: "[sh -c echo hi] stdin=false stdout=true stderr=true tty=false"},
		"tty drops stderr":       {query: "command=sh&stdin=true&stdout=true&stderr=true&tty=true", want: "[sh] stdin=true stdout=true stderr=false tty=true"},
		"no command":             {query: "stdout=1", wantErr: "command: Required value"},
		"no stream":              {query: "command=ls", wantErr: "at least 1 of stdin, stdout, stderr"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			got, err := ExecOptions(q)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := strings.Join([]string{
				"[" + strings.Join(got.Cmd, " ") + "]",
				"stdin=" + boolStr(got.Stdin), "stdout=" + boolStr(got.Stdout), "stderr=" + boolStr(got.Stderr), "tty=" + boolStr(got.Tty),
			}, " ")
			if s != tc.want {
				t.Errorf("got %s, want %s", s, tc.want)
			}
		})
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// fakeAPI is an API server that answers TokenReviews (token "alice-token"
// is alice) and SubjectAccessReviews (alice may get pods/log of pod web in
// ns1), and records the reviews.
func fakeAPI(t *testing.T) (kubernetes.Interface, *[]authorizationv1.SubjectAccessReviewSpec) {
	var mu sync.Mutex
	var sars []authorizationv1.SubjectAccessReviewSpec
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, r *http.Request) {
		tr := &authenticationv1.TokenReview{}
		_ = json.NewDecoder(r.Body).Decode(tr)
		if tr.Spec.Token == "alice-token" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "alice", Groups: []string{"devs"}}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tr)
	})
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", func(w http.ResponseWriter, r *http.Request) {
		sar := &authorizationv1.SubjectAccessReview{}
		_ = json.NewDecoder(r.Body).Decode(sar)
		mu.Lock()
		sars = append(sars, sar.Spec)
		mu.Unlock()
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "alice" && ra.Group == "core.skiff.dev" && ra.Resource == "pods" &&
			ra.Subresource == "log" && ra.Verb == "get" && ra.Namespace == "ns1" && ra.Name == "web"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sar)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs, &sars
}

func TestAuth(t *testing.T) {
	cs, sars := fakeAPI(t)
	a, err := newAuth(cs, Config{AuthenticationCacheTTL: time.Minute, AuthorizationAllowTTL: time.Minute, AuthorizationDenyTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.check(w, r, "get", SubresourceLog, r.PathValue("ns"), r.PathValue("pod")); ok {
			_, _ = w.Write([]byte("ok"))
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/{ns}/{pod}", h)
	tests := map[string]struct {
		path, token string
		code        int
		body        string
	}{
		"no credentials":    {path: "/ns1/web", code: 401, body: `"reason":"Unauthorized"`},
		"unknown token":     {path: "/ns1/web", token: "mallory", code: 401},
		"allowed":           {path: "/ns1/web", token: "alice-token", code: 200, body: "ok"},
		"another namespace": {path: "/ns2/web", token: "alice-token", code: 403, body: `User \"alice\" cannot get resource \"pods/log\" in API group \"core.skiff.dev\" in the namespace \"ns2\"`},
		"another pod":       {path: "/ns1/db", token: "alice-token", code: 403, body: `pods.core.skiff.dev \"db\" is forbidden`},
		"allowed, cached":   {path: "/ns1/web", token: "alice-token", code: 200, body: "ok"},
	}
	for _, name := range []string{"no credentials", "unknown token", "allowed", "another namespace", "another pod", "allowed, cached"} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("got %d %s, want %d with %s", rec.Code, rec.Body.String(), tc.code, tc.body)
			}
		})
	}
	if len(*sars) != 3 {
		t.Errorf("%d SubjectAccessReviews, want 3 (the repeated allowed request is cached)", len(*sars))
	}
	want := authorizationv1.ResourceAttributes{Namespace: "ns1", Verb: "get", Group: "core.skiff.dev", Version: "v1alpha1", Resource: "pods", Subresource: "log", Name: "web"}
	if diff := cmp.Diff(want, *(*sars)[0].ResourceAttributes); diff != "" {
		t.Errorf("SubjectAccessReview attributes (-want +got):\n%s", diff)
	}
}

func TestServingCertIsReusedWhileValid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	hosts := []string{"10.0.0.5", "node-a"}
	_, first, err := servingCert("", "", dir, "node-a", hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(first)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(c)
	for _, h := range []string{"10.0.0.5", "node-a", "127.0.0.1", "localhost"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, CurrentTime: now}); err != nil {
			t.Errorf("the certificate does not verify for %s with itself as the root: %v", h, err)
		}
	}
	_, again, err := servingCert("", "", dir, "node-a", hosts, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(first) {
		t.Error("a valid certificate was not reused")
	}
	_, moved, _ := servingCert("", "", dir, "node-a", []string{"10.0.0.6"}, now.Add(24*time.Hour))
	if string(moved) == string(first) {
		t.Error("the certificate was reused for a new address")
	}
	_, late, _ := servingCert("", "", dir, "node-a", []string{"10.0.0.6"}, now.Add(350*24*time.Hour))
	if string(late) == string(moved) {
		t.Error("a certificate that expires within a month was reused")
	}
}
