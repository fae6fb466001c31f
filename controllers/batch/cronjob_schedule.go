package batch

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones work where the system has no zoneinfo

	"github.com/robfig/cron/v3"
)

// parseSchedule parses a CronJob schedule: five standard fields or a
// descriptor such as @hourly, in the IANA time zone timeZone (empty means
// UTC, the zone skiff-controller-manager runs in).
func parseSchedule(schedule, timeZone string) (cron.Schedule, error) {
	if strings.Contains(schedule, "TZ=") {
		return nil, fmt.Errorf("CRON_TZ and TZ are not allowed in the schedule; use spec.timeZone")
	}
	loc, err := timeZoneLocation(timeZone)
	if err != nil {
		return nil, err
	}
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return nil, err
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return sched, nil
}

// timeZoneLocation is the location of a CronJob's spec.timeZone; empty
// means UTC, the zone skiff-controller-manager runs in.
func timeZoneLocation(timeZone string) (*time.Location, error) {
	if timeZone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(timeZone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", timeZone, err)
	}
	return loc, nil
}

// scheduleTimes is what a CronJob's schedule says about now.
type scheduleTimes struct {
	// recent is the latest schedule time in (earliest, now]; zero when none.
	recent time.Time
	// firstMissed is the earliest schedule time in (earliest, recent) that
	// will not run, and missed how many there are (capped at maxCountedMisses).
	firstMissed time.Time
	missed      int
	// next is the first schedule time after now.
	next time.Time
}

// maxCountedMisses caps the count of missed schedule times reported in
// events: the count is information only, never a reason to stop.
const maxCountedMisses = 100

// timesAt finds the most recent schedule time after earliest and at or
// before now, without walking every schedule time since earliest: upstream
// walked them and gave up after 100 ("too many missed start times"), which
// left a CronJob stuck after long downtime. Here the search window grows
// backwards from now until it holds a schedule time, so the work is bounded
// by the schedule's density, not by the length of the downtime.
func timesAt(sched cron.Schedule, earliest, now time.Time) scheduleTimes {
	st := scheduleTimes{next: sched.Next(now)}
	first := sched.Next(earliest)
	if first.After(now) {
		return st
	}
	for window := time.Minute; ; window *= 2 {
		start := now.Add(-window)
		if start.Before(earliest) {
			start = earliest
		}
		t := sched.Next(start)
		if t.After(now) {
			continue // no schedule time in (start, now]: widen the window
		}
		for n := sched.Next(t); !n.After(now); n = sched.Next(n) {
			t = n
		}
		st.recent = t
		break
	}
	if first.Before(st.recent) {
		st.firstMissed = first
		for m := first; m.Before(st.recent) && st.missed < maxCountedMisses; m = sched.Next(m) {
			st.missed++
		}
	}
	return st
}

// jobNameFor names the Job of one scheduled time, deterministically, so a
// restarted controller finds the Job it already created instead of creating
// a second one.
func jobNameFor(cronJobName string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cronJobName, scheduled.Unix()/60)
}
