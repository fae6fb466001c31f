package batch

import (
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

func TestValidateCronJob(t *testing.T) {
	tests := map[string]struct {
		schedule string
		tz       *string
		want     []string // substrings of the error; none means valid
	}{
		"valid":                {schedule: "*/5 * * * *"},
		"valid macro and zone": {schedule: "@daily", tz: ptr.To("America/New_York")},
		"bad schedule":         {schedule: "*/5 * * *", want: []string{"spec.schedule", "expected exactly 5 fields"}},
		"out of range":         {schedule: "0 25 * * *", want: []string{"spec.schedule", "above maximum"}},
		"bad zone":             {schedule: "@daily", tz: ptr.To("Moon/Base"), want: []string{"spec.timeZone", "unknown time zone"}},
		"Local is not a zone":  {schedule: "@daily", tz: ptr.To("Local"), want: []string{"spec.timeZone"}},
		"both wrong":           {schedule: "x", tz: ptr.To("Nowhere"), want: []string{"spec.timeZone", "spec.schedule"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cj := &batchv1alpha1.CronJob{}
			cj.Name = "cj"
			cj.Spec.Schedule, cj.Spec.TimeZone = tc.schedule, tc.tz
			err := validateCronJob(cj)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
