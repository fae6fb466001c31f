package pods

import (
	"context"
	"testing"

	"github.com/skiff-dev/skiff/agent/cri/fake"
)

// recordingRuntime records RemoveContainer calls above the fake runtime.
type recordingRuntime struct {
	*fake.Runtime
	removed []string
}

func (r *recordingRuntime) RemoveContainer(_ context.Context, id string) error {
	r.removed = append(r.removed, id)
	return nil
}

func fakeRuntimeForPrune(t *testing.T) *recordingRuntime {
	t.Helper()
	return &recordingRuntime{Runtime: fake.New(fake.Options{})}
}
