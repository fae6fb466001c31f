package node

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestParseThresholds(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr string
	}{
		"the default":                {in: DefaultEvictionHardFlags, want: []string{"memory.available<100Mi", "nodefs.available<10%", "nodefs.inodesFree<5%", "imagefs.available<15%", "imagefs.inodesFree<5%"}},
		"empty means none":           {in: "", want: nil},
		"spaces and a pid count":     {in: " pid.available<1000 , memory.available<1Gi", want: []string{"pid.available<1k", "memory.available<1Gi"}},
		"an unknown signal":          {in: "cpu.available<1", wantErr: `unknown signal "cpu.available"`},
		"no operator":                {in: "memory.available=1Gi", wantErr: "want <signal><<value>"},
		"a percentage above 100":     {in: "nodefs.available<150%", wantErr: "between 0% and 100%"},
		"a quantity that is invalid": {in: "memory.available<lots", wantErr: `"lots" is not a non-negative quantity`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseThresholds(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, th := range got {
				s = append(s, th.String())
			}
			if diff := cmp.Diff(tc.want, s); diff != "" {
				t.Errorf("thresholds (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJudgePressure(t *testing.T) {
	th, err := ParseThresholds(DefaultEvictionHardFlags + ",pid.available<10%")
	if err != nil {
		t.Fatal(err)
	}
	const gi = 1 << 30
	healthy := Observations{
		SignalMemoryAvailable:   {Available: 4 * gi, Capacity: 8 * gi},
		SignalNodeFSAvailable:   {Available: 50 * gi, Capacity: 100 * gi},
		SignalNodeFSInodesFree:  {Available: 900, Capacity: 1000},
		SignalImageFSAvailable:  {Available: 50 * gi, Capacity: 100 * gi},
		SignalImageFSInodesFree: {Available: 900, Capacity: 1000},
		SignalPIDAvailable:      {Available: 30000, Capacity: 32768},
	}
	with := func(signal string, o Observation) Observations {
		out := Observations{}
		for k, v := range healthy {
			out[k] = v
		}
		out[signal] = o
		return out
	}
	tests := map[string]struct {
		obs  Observations
		want Pressure
	}{
		"a healthy machine":                       {obs: healthy, want: Pressure{}},
		"nothing observed":                        {obs: Observations{}, want: Pressure{}},
		"memory below an absolute one":            {obs: with(SignalMemoryAvailable, Observation{Available: 50 << 20, Capacity: 8 * gi}), want: Pressure{"MemoryPressure": {"memory.available is 50Mi, below the threshold memory.available<100Mi"}}},
		"exactly at the threshold is no pressure": {obs: with(SignalMemoryAvailable, Observation{Available: 100 << 20, Capacity: 8 * gi}), want: Pressure{}},
		"disk below a percentage":                 {obs: with(SignalNodeFSAvailable, Observation{Available: 9 * gi, Capacity: 100 * gi}), want: Pressure{"DiskPressure": {"nodefs.available is 9Gi, below the threshold nodefs.available<10%"}}},
		"inodes count as disk":                    {obs: with(SignalImageFSInodesFree, Observation{Available: 10, Capacity: 1000}), want: Pressure{"DiskPressure": {"imagefs.inodesFree is 10, below the threshold imagefs.inodesFree<5%"}}},
		"few process IDs":                         {obs: with(SignalPIDAvailable, Observation{Available: 3000, Capacity: 32768}), want: Pressure{"PIDPressure": {"pid.available is 3000, below the threshold pid.available<10%"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, JudgePressure(tc.obs, th)); diff != "" {
				t.Errorf("pressure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeStatusPressure(t *testing.T) {
	in := StatusInput{Machine: Machine{}, RuntimeReady: true, Now: metav1.Now(),
		Pressure: Pressure{"DiskPressure": {"nodefs.available is 9Gi, below the threshold nodefs.available<10%"}}}
	st := ComputeStatus(corev1alpha1.NodeStatus{}, in)
	disk := meta.FindStatusCondition(st.Conditions, corev1alpha1.NodeDiskPressure)
	if disk == nil || disk.Status != metav1.ConditionTrue || disk.Reason != "AgentHasDiskPressure" ||
		disk.Message != "The agent has disk pressure: nodefs.available is 9Gi, below the threshold nodefs.available<10%" {
		t.Errorf("DiskPressure %+v", disk)
	}
	for _, typ := range []string{corev1alpha1.NodeMemoryPressure, corev1alpha1.NodePIDPressure} {
		if c := meta.FindStatusCondition(st.Conditions, typ); c == nil || c.Status != metav1.ConditionFalse {
			t.Errorf("%s %+v, want False", typ, c)
		}
	}
}

func TestHostObserver(t *testing.T) {
	dir := t.TempDir()
	obs := HostObserver{NodeFS: dir, ImageFS: dir}.Observe()
	for _, s := range []string{SignalMemoryAvailable, SignalNodeFSAvailable, SignalImageFSAvailable, SignalPIDAvailable} {
		o, ok := obs[s]
		if !ok || o.Capacity <= 0 || o.Available < 0 || o.Available > o.Capacity {
			t.Errorf("%s: %+v (observed %v)", s, o, ok)
		}
	}
}
