package utils

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/manager"
)

// Manager is skiff-controller-manager (internal/manager, every area the
// options name) running in this process; a test stops and restarts it to
// prove that controllers resume from what the API server holds, with empty
// caches and expectations.
type Manager struct {
	cfg  *rest.Config
	opts manager.Options

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
	starts int
}

// StartManager builds the manager from opts and starts it. Metrics and
// probes are off unless opts asks for them.
func StartManager(ctx context.Context, cfg *rest.Config, opts manager.Options) (*Manager, error) {
	opts.SkipNameValidation = true
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "0"
	}
	if opts.ProbeAddr == "" {
		opts.ProbeAddr = "0"
	}
	m := &Manager{cfg: rest.CopyConfig(cfg), opts: opts}
	return m, m.start(ctx)
}

func (m *Manager) start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return fmt.Errorf("manager already running")
	}
	mgr, err := manager.New(m.cfg, m.opts)
	if err != nil {
		return err
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	select {
	case <-mgr.Elected():
	case err := <-done:
		cancel()
		return fmt.Errorf("manager stopped at start: %w", err)
	case <-time.After(time.Minute):
		cancel()
		<-done
		return fmt.Errorf("manager did not start within a minute")
	}
	m.cancel, m.done = cancel, done
	m.starts++
	return nil
}

// Stop stops the manager and waits until every controller has returned.
func (m *Manager) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	err := <-m.done
	m.cancel, m.done = nil, nil
	return err
}

// Start starts a stopped manager again: a new process, as far as the
// controllers can tell.
func (m *Manager) Start(ctx context.Context) error { return m.start(ctx) }

// Restart stops the manager and starts a new one.
func (m *Manager) Restart(ctx context.Context) error {
	if err := m.Stop(); err != nil {
		return err
	}
	return m.start(ctx)
}

// Starts is how many times the manager has been started.
func (m *Manager) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}
