package apiserver

// The API server's rights, exactly upstream's brupop-apiserver-role plus the DaemonSet read the
// drain's filter needs and the Events it records on Nodes. TokenReviews come from the system:auth-delegator binding in config/rbac.
// The pod read serves the drain and, for tokens without node extras, BoundPods' watch of the
// agent pods.

// +kubebuilder:rbac:groups=brupop.bottlerocket.aws,resources=bottlerocketshadows;bottlerocketshadows/status,verbs=create;get;list;patch;update;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/eviction,verbs=create
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;patch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
