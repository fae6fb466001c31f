// Package batch holds the controllers of batch.skiff.dev: CronJob (and,
// with issue 5, Job). Each kind has one reconciler; the schedule arithmetic
// of CronJob is pure and lives in cronjob_schedule.go.
//
// The package reads and writes batch.skiff.dev objects and creates Jobs for
// CronJobs; it must not touch pods directly (that is the Job controller's
// work).
package batch
