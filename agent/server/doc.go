// Package server is the agent API: the HTTPS endpoint every real node's
// agent serves, as the kubelet's port 10250, for container logs and exec.
//
// Routes (the kubelet's):
//
//	GET      /containerLogs/{namespace}/{pod}/{container}   ?follow&previous&timestamps&tailLines&sinceSeconds&sinceTime&limitBytes&stream
//	GET|POST /exec/{namespace}/{pod}/{container}            ?command=...&stdin&stdout&stderr&tty
//
// Exec speaks the remote command protocols of client-go's remotecommand:
// SPDY (v1 to v4) is proxied as it is to the container runtime's streaming
// server (CRI Exec returns its URL), and WebSocket v5.channel.k8s.io is
// translated to SPDY toward it, as the API server does.
//
// Every request is authenticated (a bearer token through a TokenReview, or
// a client certificate signed by the configured client CA; anonymous
// requests get 401) and authorized through a SubjectAccessReview naming the
// skiff pod itself (403 when denied):
//
//	logs: verb get,    group core.skiff.dev, resource pods, subresource log,  namespace and name of the pod
//	exec: verb create, group core.skiff.dev, resource pods, subresource exec, namespace and name of the pod
//
// so a Role with `apiGroups: [core.skiff.dev], resources: [pods/log]` or
// `[pods/exec]` grants them. Decisions are cached briefly, as the kubelet's
// webhook mode does.
//
// The serving certificate is self-signed, kept under the agent's root
// directory and reused while valid; the agent publishes it in its Node's
// status.agentCertificate and its port in status.daemonEndpoints, so that
// clients (internal/agentclient) can find and verify the agent.
//
// The package owns the HTTP side only: it must not change pods or the
// runtime's containers beyond running the exec a client asked for.
package server
