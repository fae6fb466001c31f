package batch

import (
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseSchedule(t *testing.T) {
	tests := map[string]struct {
		schedule, tz string
		wantErr      bool
	}{
		"five fields":             {schedule: "*/5 * * * *"},
		"macro":                   {schedule: "@hourly"},
		"names":                   {schedule: "0 9 * JAN-MAR MON-FRI"},
		"with time zone":          {schedule: "30 2 * * *", tz: "Europe/Berlin"},
		"six fields":              {schedule: "0 */5 * * * *", wantErr: true},
		"minute out of range":     {schedule: "61 * * * *", wantErr: true},
		"garbage":                 {schedule: "every day", wantErr: true},
		"unknown time zone":       {schedule: "@daily", tz: "Mars/Olympus_Mons", wantErr: true},
		"TZ inside the schedule":  {schedule: "CRON_TZ=UTC 0 * * * *", wantErr: true},
		"empty schedule":          {schedule: "", wantErr: true},
		"day of month 0 is wrong": {schedule: "0 0 0 * *", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := parseSchedule(tc.schedule, tc.tz)
			if (err != nil) != tc.wantErr {
				t.Errorf("parseSchedule(%q, %q) error = %v, wantErr %v", tc.schedule, tc.tz, err, tc.wantErr)
			}
		})
	}
}

func TestTimesAt(t *testing.T) {
	tests := map[string]struct {
		schedule, tz    string
		earliest, now   string
		wantRecent      string // "" for none
		wantMissed      int
		wantFirstMissed string
		wantNext        string
	}{
		"nothing due yet": {
			schedule: "0 * * * *", earliest: "2026-01-01T10:05:00Z", now: "2026-01-01T10:30:00Z",
			wantNext: "2026-01-01T11:00:00Z",
		},
		"one due": {
			schedule: "0 * * * *", earliest: "2026-01-01T10:05:00Z", now: "2026-01-01T11:00:30Z",
			wantRecent: "2026-01-01T11:00:00Z", wantNext: "2026-01-01T12:00:00Z",
		},
		"exactly at the schedule time": {
			schedule: "*/15 * * * *", earliest: "2026-01-01T10:00:00Z", now: "2026-01-01T10:15:00Z",
			wantRecent: "2026-01-01T10:15:00Z", wantNext: "2026-01-01T10:30:00Z",
		},
		"three missed after downtime": {
			schedule: "0 * * * *", earliest: "2026-01-01T08:00:00Z", now: "2026-01-01T12:10:00Z",
			wantRecent: "2026-01-01T12:00:00Z", wantMissed: 3, wantFirstMissed: "2026-01-01T09:00:00Z", wantNext: "2026-01-01T13:00:00Z",
		},
		"a year of every-minute downtime is not a trap": {
			schedule: "* * * * *", earliest: "2025-01-01T00:00:00Z", now: "2026-01-01T00:00:30Z",
			wantRecent: "2026-01-01T00:00:00Z", wantMissed: maxCountedMisses, wantFirstMissed: "2025-01-01T00:01:00Z", wantNext: "2026-01-01T00:01:00Z",
		},
		"yearly schedule": {
			schedule: "@yearly", earliest: "2020-06-01T00:00:00Z", now: "2026-03-01T00:00:00Z",
			wantRecent: "2026-01-01T00:00:00Z", wantMissed: 5, wantFirstMissed: "2021-01-01T00:00:00Z", wantNext: "2027-01-01T00:00:00Z",
		},
		"time zone shifts the schedule": {
			schedule: "0 9 * * *", tz: "Asia/Tokyo", earliest: "2026-01-01T00:30:00Z", now: "2026-01-02T00:10:00Z",
			wantRecent: "2026-01-02T00:00:00Z", wantNext: "2026-01-03T00:00:00Z",
		},
		"earliest is exclusive": {
			schedule: "0 * * * *", earliest: "2026-01-01T10:00:00Z", now: "2026-01-01T10:59:00Z",
			wantNext: "2026-01-01T11:00:00Z",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sched, err := parseSchedule(tc.schedule, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			got := timesAt(sched, mustTime(t, tc.earliest), mustTime(t, tc.now))
			if tc.wantRecent == "" {
				if !got.recent.IsZero() {
					t.Errorf("recent = %v, want none", got.recent)
				}
			} else if !got.recent.Equal(mustTime(t, tc.wantRecent)) {
				t.Errorf("recent = %v, want %v", got.recent.UTC(), tc.wantRecent)
			}
			if got.missed != tc.wantMissed {
				t.Errorf("missed = %d, want %d", got.missed, tc.wantMissed)
			}
			if tc.wantFirstMissed != "" && !got.firstMissed.Equal(mustTime(t, tc.wantFirstMissed)) {
				t.Errorf("firstMissed = %v, want %v", got.firstMissed.UTC(), tc.wantFirstMissed)
			}
			if !got.next.Equal(mustTime(t, tc.wantNext)) {
				t.Errorf("next = %v, want %v", got.next.UTC(), tc.wantNext)
			}
		})
	}
}

func BenchmarkTimesAtAfterLongDowntime(b *testing.B) {
	sched, _ := parseSchedule("* * * * *", "")
	earliest := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	for b.Loop() {
		timesAt(sched, earliest, now)
	}
}
