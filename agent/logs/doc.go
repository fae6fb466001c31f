// Package logs reads and rotates the container log files that the agent asks
// the runtime to write (CRI log format: "<RFC3339Nano time> <stream> <tag>
// <content>", tag P for a partial line and F for a full one).
//
// Read serves `kubectl logs` semantics (tail, since, timestamps, limit
// bytes, follow) over one container's log file; in follow mode it keeps
// reading across a rotation and ends once the container has ended. The
// Rotator caps every running container's log at a size and a number of
// files, as the kubelet's containerLogMaxSize and containerLogMaxFiles, and
// asks the runtime to reopen the log after a rotation.
//
// The package must not know about skiff API objects or HTTP.
package logs
