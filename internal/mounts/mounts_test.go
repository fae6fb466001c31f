package mounts

import "testing"

func TestUnderFindsProcAndNotItsSibling(t *testing.T) {
	got, err := Under("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1] != "/proc" {
		t.Fatalf("Under(/proc) = %v, want /proc last (shallowest)", got)
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) {
			t.Errorf("not deepest first: %q before %q", got[i-1], got[i])
		}
	}
	if none, _ := Under("/pro"); len(none) != 0 {
		t.Errorf("Under(/pro) = %v, want nothing: /proc is not below /pro", none)
	}
}
