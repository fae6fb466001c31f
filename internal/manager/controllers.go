package manager

import (
	"fmt"
	"slices"
	"sort"
	"sync"

	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupFunc registers one area's controllers (workloads, scheduler, nodes,
// services, volumes, ...) with the manager.
type SetupFunc func(mgr ctrl.Manager, opts Options) error

var (
	setupMu sync.Mutex
	setups  = map[string]SetupFunc{}
)

// Register adds an area's setup function. Each area calls it from an init
// function in its own setup_<area>.go file in this package, so that areas
// are added and removed without touching each other.
func Register(area string, setup SetupFunc) {
	setupMu.Lock()
	defer setupMu.Unlock()
	if _, dup := setups[area]; dup {
		panic("manager: area registered twice: " + area)
	}
	setups[area] = setup
}

// setupAll runs every registered setup function, in the order of the area names.
func setupAll(mgr ctrl.Manager, opts Options) error {
	setupMu.Lock()
	defer setupMu.Unlock()
	areas := make([]string, 0, len(setups))
	for area := range setups {
		areas = append(areas, area)
	}
	sort.Strings(areas)
	for _, area := range areas {
		if len(opts.Areas) > 0 && !slices.Contains(opts.Areas, area) {
			continue
		}
		if err := setups[area](mgr, opts); err != nil {
			return fmt.Errorf("setting up %s controllers: %w", area, err)
		}
	}
	return nil
}
