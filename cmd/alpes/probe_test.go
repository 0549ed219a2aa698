package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"ready":true}`)) })
	mux.HandleFunc("GET /notready", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"ready":false,"sources":{"orders":"lost"}}`, http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/readyz", http.StatusFound) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	out, err := alpes(t, "probe", srv.URL+"/readyz")
	if err != nil || out != "" {
		t.Errorf("a 200: err = %v, output %q; want success, silent", err, out)
	}
	for _, c := range []struct {
		args []string
		want []string // in the error
	}{
		{[]string{srv.URL + "/notready"}, []string{"503", `"orders":"lost"`}}, // the body says why
		{[]string{srv.URL + "/moved"}, []string{"302"}},                       // not followed
		{[]string{srv.URL + "/nowhere"}, []string{"404"}},
		{[]string{"http://" + closedPort(t) + "/readyz"}, []string{"connection refused"}},
		{[]string{srv.URL + "/slow", "--timeout", "100ms"}, []string{"deadline exceeded"}},
		{[]string{"::not a url"}, []string{"probe"}},
	} {
		start := time.Now()
		_, err := alpes(t, append([]string{"probe"}, c.args...)...)
		if err == nil {
			t.Errorf("probe %v succeeded", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("probe %v: error %q lacks %q", c.args, err, w)
			}
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("probe %v took %v", c.args, d)
		}
	}
}
