package manager

// The permissions of skiff-controller-manager, generated into
// config/rbac/role.yaml by `make manifests`.
//
// +kubebuilder:rbac:groups=core.skiff.dev;apps.skiff.dev;batch.skiff.dev;storage.skiff.dev;policy.skiff.dev,resources=*,verbs=get;list;watch;create;update;patch;delete;deletecollection
// +kubebuilder:rbac:groups=core.skiff.dev;apps.skiff.dev;batch.skiff.dev;storage.skiff.dev;policy.skiff.dev,resources=*/status;*/scale;*/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=controllerrevisions,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces;configmaps;secrets;serviceaccounts,verbs=get;list;watch
