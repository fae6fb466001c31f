// Package utils is what skiff's integration suites share instead of each
// copying it: starting the control plane with a logger and the verbose
// switch (SKIFF_TEST_VERBOSE), the real skiff-controller-manager that a
// test can stop and restart mid-run, simulated nodes (skiff-agent over the
// fake runtime) that can be added and removed one by one, a clock that
// tests move ahead while time still flows, and a pod watch that checks an
// invariant at every pod change.
//
// It starts only what it returns and stops exactly that; it holds no
// Ginkgo or Gomega so any test framework can use it.
package utils
