package apps

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
)

// SetupWithManager registers every apps.skiff.dev reconciler with mgr.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	c, reader := mgr.GetClient(), mgr.GetAPIReader()
	if err := NewReplicaSetReconciler(c, reader, mgr.GetEventRecorder("replicaset-controller"), nil).SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := NewDeploymentReconciler(c, reader, mgr.GetEventRecorder("deployment-controller"), nil).SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := NewStatefulSetReconciler(c, reader, mgr.GetEventRecorder("statefulset-controller"), nil).SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	return NewDaemonSetReconciler(c, reader, mgr.GetEventRecorder("daemonset-controller"), nil).SetupWithManager(ctx, mgr)
}
