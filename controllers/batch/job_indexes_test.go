package batch

import "testing"

func TestIndexSetRoundTrip(t *testing.T) {
	tests := map[string]struct {
		in          string
		completions int
		want        string
		size        int
	}{
		"empty":                     {"", 5, "", 0},
		"single":                    {"3", 5, "3", 1},
		"ranges and singles":        {"0-2,4,6-8", 10, "0-2,4,6-8", 7},
		"two neighbours are listed": {"6-7", 10, "6,7", 2},
		"a range of three":          {"6,7,8", 10, "6-8", 3},
		"unsorted and overlapping":  {"5,0-1,1-2", 10, "0-2,5", 4},
		"beyond completions":        {"2-9", 5, "2-4", 3},
		"garbage is ignored":        {"x,1,y-2", 5, "1", 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := parseIndexes(tc.in, tc.completions)
			if got := s.String(); got != tc.want || len(s) != tc.size {
				t.Errorf("parseIndexes(%q) = %q (%d), want %q (%d)", tc.in, got, len(s), tc.want, tc.size)
			}
		})
	}
}
