package failpoint

import "testing"

func TestParse(t *testing.T) {
	s, err := Parse(" relay/after-send=crash@100, relay/before-confirm=crash ")
	if err != nil {
		t.Fatal(err)
	}
	if s.points["relay/after-send"].at != 100 || s.points["relay/before-confirm"].at != 1 {
		t.Errorf("parsed %+v", s.points)
	}
	for _, bad := range []string{"x", "x=stop", "x=crash@0", "x=crash@many", "=crash"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if s, err := Parse(""); s != nil || err != nil {
		t.Errorf("empty spec: %v, %v", s, err)
	}
}

func TestUnarmedPointsDoNothing(t *testing.T) {
	var none *Set
	none.Hit("relay/after-send")
	s, _ := Parse("relay/after-send=crash@1000000")
	for range 10 {
		s.Hit("relay/after-send")
		s.Hit("relay/other")
	}
	if got := s.points["relay/after-send"].hits.Load(); got != 10 {
		t.Errorf("hits = %d, want 10", got)
	}
}
