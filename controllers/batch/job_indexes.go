package batch

import (
	"sort"
	"strconv"
	"strings"
)

// indexSet is a set of completion indexes of an Indexed Job, written in
// status as upstream does: sorted intervals of three or more, neighbours
// and single indexes listed, "1,3-5,7,8".
type indexSet map[int]bool

// parseIndexes reads the interval form; entries that do not parse or fall
// outside [0, completions) are ignored, as upstream ignores them.
func parseIndexes(s string, completions int) indexSet {
	set := indexSet{}
	if s == "" {
		return set
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := max(first, 0); i <= last && i < completions; i++ {
			set[i] = true
		}
	}
	return set
}

// String writes the set in interval form.
func (s indexSet) String() string {
	if len(s) == 0 {
		return ""
	}
	idx := make([]int, 0, len(s))
	for i := range s {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		switch {
		case j == i+1:
			// Two neighbours are listed, not ranged, as upstream writes them.
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(idx[j]))
		case j > i:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}
