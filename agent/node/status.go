package node

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// AgentVersion is what the Node reports as its kubelet version.
const AgentVersion = "skiff-agent/v0.1.0"

// StatusInput is everything a node's status is computed from.
type StatusInput struct {
	Machine Machine
	// RuntimeName and RuntimeVersion come from the CRI Version call.
	RuntimeName, RuntimeVersion string
	// RuntimeReady tells whether the runtime and its network are ready;
	// RuntimeMessage says why not.
	RuntimeReady   bool
	RuntimeMessage string
	// Unschedulable is the Node's spec.unschedulable.
	Unschedulable bool
	// Port is the agent API port, 0 when it serves none.
	Port int32
	// Pressure names the pressure conditions that hold and why; nil or
	// empty means none.
	Pressure Pressure
	// Certificate is the agent API's serving certificate (PEM), "" when it serves none.
	Certificate string
	// Now stamps condition transitions.
	Now metav1.Time
}

// ComputeStatus returns the node status the agent posts, keeping the
// transition times of conditions that did not change from prev.
func ComputeStatus(prev corev1alpha1.NodeStatus, in StatusInput) corev1alpha1.NodeStatus {
	st := corev1alpha1.NodeStatus{
		Capacity:    in.Machine.Capacity.DeepCopy(),
		Allocatable: in.Machine.Capacity.DeepCopy(),
		Addresses:   append([]corev1.NodeAddress(nil), in.Machine.Addresses...),
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               orUnknown(in.Machine.MachineID),
			SystemUUID:              orUnknown(in.Machine.SystemUUID),
			KubeProxyVersion:        AgentVersion,
			BootID:                  orUnknown(in.Machine.BootID),
			KernelVersion:           in.Machine.KernelVersion,
			OSImage:                 in.Machine.OSImage,
			ContainerRuntimeVersion: in.RuntimeName + "://" + in.RuntimeVersion,
			KubeletVersion:          AgentVersion,
			OperatingSystem:         in.Machine.OperatingSystem,
			Architecture:            in.Machine.Architecture,
		},
		DaemonEndpoints:  corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: in.Port}},
		Conditions:       append([]metav1.Condition(nil), prev.Conditions...),
		AgentCertificate: in.Certificate,
		Images:           prev.Images,
		VolumesInUse:     prev.VolumesInUse,
	}
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		c := metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, LastTransitionTime: in.Now}
		meta.SetStatusCondition(&st.Conditions, c)
	}
	for _, pc := range pressureConditions {
		if why := in.Pressure[pc.typ]; len(why) > 0 {
			set(pc.typ, metav1.ConditionTrue, pc.reasonTrue, pc.messageTrue+": "+strings.Join(why, "; "))
		} else {
			set(pc.typ, metav1.ConditionFalse, pc.reasonFalse, pc.messageFalse)
		}
	}
	if in.RuntimeReady {
		set(conditions.Ready, metav1.ConditionTrue, corev1alpha1.ReasonAgentReady, "The agent is posting ready status")
	} else {
		set(conditions.Ready, metav1.ConditionFalse, corev1alpha1.ReasonAgentNotReady, "The container runtime is not ready: "+in.RuntimeMessage)
	}
	kstatus.SyncWithReady(&st.Conditions)
	st.DisplayStatus = DisplayStatus(st.Conditions, in.Unschedulable)
	return st
}

// pressureConditions are the node's pressure conditions with the reasons
// and messages of each state, as the kubelet's (prefixed Agent, not Kubelet).
var pressureConditions = []struct {
	typ, reasonTrue, messageTrue, reasonFalse, messageFalse string
}{
	{corev1alpha1.NodeMemoryPressure, "AgentHasInsufficientMemory", "The agent has insufficient memory available",
		"AgentHasSufficientMemory", "The agent has sufficient memory available"},
	{corev1alpha1.NodeDiskPressure, "AgentHasDiskPressure", "The agent has disk pressure",
		"AgentHasNoDiskPressure", "The agent has no disk pressure"},
	{corev1alpha1.NodePIDPressure, "AgentHasInsufficientPID", "The agent has insufficient PID available",
		"AgentHasSufficientPID", "The agent has sufficient PID available"},
}

// DisplayStatus is the STATUS column of `kubectl get nodes`.
func DisplayStatus(conds []metav1.Condition, unschedulable bool) string {
	s := "Unknown"
	if c := meta.FindStatusCondition(conds, conditions.Ready); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			s = "Ready"
		case metav1.ConditionFalse:
			s = "NotReady"
		}
	}
	if unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

// orUnknown fills fields the Node schema requires.
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
