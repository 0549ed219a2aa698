package main

import "testing"

func TestDefaultAdminURL(t *testing.T) {
	for _, c := range []struct{ service, want string }{
		{"pulsar://127.0.0.1:6650", "http://127.0.0.1:8080"},
		{"pulsar://broker.example:6650", "http://broker.example:8080"},
		{"pulsar+ssl://broker.example:6651", "https://broker.example:8443"},
		{"pulsar://b1:6650,b2:6650", "http://b1:8080"},
		{"pulsar://[::1]:6650", "http://[::1]:8080"},
		{"pulsar://broker", "http://broker:8080"},
	} {
		got, err := defaultAdminURL(c.service)
		if err != nil || got != c.want {
			t.Errorf("defaultAdminURL(%q) = %q, %v; want %q", c.service, got, err, c.want)
		}
	}
	if _, err := defaultAdminURL("not a url"); err == nil {
		t.Error("defaultAdminURL accepted a URL without a host")
	}
}
