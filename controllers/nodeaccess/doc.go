// Package nodeaccess grants each node identity (user
// system:skiff-node:<node>, see internal/nodeid) reads of exactly the Secrets
// and ConfigMaps that the pods bound to its node use, as upstream's Node
// authorizer does from its graph of pods, nodes and the objects they
// reference. It keeps, per node and namespace, a Role named
// skiff-node:<node> with the referenced names as resourceNames and a
// RoleBinding of that name to the node's user, and follows pods as they are
// bound, change and go away.
//
// It owns those Roles and RoleBindings (label skiff.dev/node-access) and
// nothing else: it writes no pod, Node, Secret or ConfigMap. What a node may
// write is the skiff-node-restriction admission policy's business
// (config/noderestriction).
package nodeaccess
