package main

import (
	"encoding/json"
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// A rule adds admission checks to every schema node of one shape. Shapes are
// recognised by their properties, so a rule reaches an upstream type wherever
// it is embedded: a PodSpec in a Pod, a Deployment template, or a CronJob's
// job template.
type rule struct {
	name    string
	matches func(s *apiextensionsv1.JSONSchemaProps, path []string) bool
	apply   func(s *apiextensionsv1.JSONSchemaProps)
}

func has(s apiextensionsv1.JSONSchemaProps, props ...string) bool {
	for _, p := range props {
		if _, ok := s.Properties[p]; !ok {
			return false
		}
	}
	return true
}

func isPodSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "containers", "dnsPolicy", "restartPolicy")
}

func isContainer(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "image", "imagePullPolicy", "name", "terminationMessagePolicy")
}

func isVolume(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "name", "emptyDir", "hostPath", "configMap", "secret")
}

func isPersistentVolumeSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "persistentVolumeReclaimPolicy", "claimRef")
}

func isClaimSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "accessModes", "dataSourceRef", "volumeName", "resources")
}

// isWorkloadSpec matches the specs of ReplicaSet, Deployment, StatefulSet and
// DaemonSet: a selector and a pod template, and no Job fields.
func isWorkloadSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "selector", "template") && !has(s, "backoffLimit")
}

func isJobSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "template", "backoffLimit", "completionMode")
}

func isServiceSpec(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "clusterIP", "ports", "sessionAffinity", "externalTrafficPolicy")
}

func isLabelSelector(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "matchLabels", "matchExpressions")
}

func isToleration(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "key", "operator", "effect", "tolerationSeconds")
}

func isTaint(s apiextensionsv1.JSONSchemaProps) bool {
	return has(s, "key", "value", "effect", "timeAdded")
}

func shape(f func(apiextensionsv1.JSONSchemaProps) bool) func(*apiextensionsv1.JSONSchemaProps, []string) bool {
	return func(s *apiextensionsv1.JSONSchemaProps, _ []string) bool { return f(*s) }
}

// notSupported rejects each named property of the node with a message that
// names the field and says skiff does not implement it.
func notSupported(props ...string) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		for _, p := range props {
			forbid(s, p, fmt.Sprintf("%s is not supported by skiff", p))
		}
	}
}

// forbid rejects property p of the node whenever it is present, naming it.
//
// The rule sits on the property itself, not on the node as `!has(self.p)`:
// the API server runs a rule only where its node is present in the object,
// so a rule on an absent property costs nothing, while a rule on the node
// runs on every write of every object that has the node. Every write of a
// Pod (create, bind, each status update) evaluates the rules of its spec;
// on the spec, each `has(self.p)` makes the API server build the field
// list of the whole PodSpec schema, which made the CEL rules about a sixth
// of its CPU for a pod's writes.
func forbid(s *apiextensionsv1.JSONSchemaProps, p, message string) {
	prop, ok := s.Properties[p]
	if !ok {
		return
	}
	addRule(&prop, apiextensionsv1.ValidationRule{Rule: "false", Message: message, Reason: reasonForbidden()})
	s.Properties[p] = prop
}

// onlySupported rejects every property of the node except the allowed ones,
// for objects such as volume sources where upstream keeps adding
// alternatives. Each rejected property carries its own rule (see forbid).
func onlySupported(what string, allowed ...string) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		ok := map[string]bool{}
		for _, a := range allowed {
			ok[a] = true
		}
		var shown []string
		for _, a := range allowed {
			if a != "name" {
				shown = append(shown, a)
			}
		}
		message := fmt.Sprintf("%s not supported by skiff: use %s", what, strings.Join(shown, ", "))
		for p := range s.Properties {
			if !ok[p] {
				forbid(s, p, message)
			}
		}
	}
}

// onProperty applies f to property p of the node.
func onProperty(p string, f func(*apiextensionsv1.JSONSchemaProps)) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		prop, ok := s.Properties[p]
		if !ok {
			return
		}
		f(&prop)
		s.Properties[p] = prop
	}
}

func reasonForbidden() *apiextensionsv1.FieldValueErrorReason {
	r := apiextensionsv1.FieldValueForbidden
	return &r
}

func addRule(s *apiextensionsv1.JSONSchemaProps, r apiextensionsv1.ValidationRule) {
	for _, existing := range s.XValidations {
		if existing.Rule == r.Rule {
			return
		}
	}
	s.XValidations = append(s.XValidations, r)
}

// enum sets the allowed values of a string property of the node, or of the
// items of a list property when the name ends in "[]".
func enum(prop string, values ...string) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		name, items := strings.CutSuffix(prop, "[]")
		p, ok := s.Properties[name]
		if !ok {
			return
		}
		target := &p
		if items {
			if p.Items == nil || p.Items.Schema == nil {
				return
			}
			target = p.Items.Schema
		}
		target.Enum = nil
		for _, v := range values {
			raw, _ := json.Marshal(v)
			target.Enum = append(target.Enum, apiextensionsv1.JSON{Raw: raw})
		}
		s.Properties[name] = p
	}
}

// minimum sets the lower bound of an integer property of the node.
func minimum(prop string, min float64) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		p, ok := s.Properties[prop]
		if !ok {
			return
		}
		p.Minimum = &min
		s.Properties[prop] = p
	}
}

// minItems sets the least number of items of a list property of the node.
func minItems(prop string, n int64) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		p, ok := s.Properties[prop]
		if !ok {
			return
		}
		p.MinItems = &n
		s.Properties[prop] = p
	}
}

// defaults sets upstream's default values of properties of the node that
// upstream fills in at admission (replicas: 1, restartPolicy: Always, ...).
// kubectl scale, for one, needs spec.replicas to exist.
func defaults(values map[string]any) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		for prop, v := range values {
			p, ok := s.Properties[prop]
			if !ok {
				continue
			}
			raw, _ := json.Marshal(v)
			p.Default = &apiextensionsv1.JSON{Raw: raw}
			s.Properties[prop] = p
		}
	}
}

// validation adds a CEL rule to the node.
func validation(r, message, fieldPath string) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		addRule(s, apiextensionsv1.ValidationRule{Rule: r, Message: message, FieldPath: fieldPath})
	}
}

func all(fs ...func(*apiextensionsv1.JSONSchemaProps)) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		for _, f := range fs {
			f(s)
		}
	}
}

// selectorMatchesTemplate is the upstream rule "selector does not match
// template labels", for matchLabels and every matchExpressions operator.
const selectorMatchesTemplate = `has(self.template.metadata) && has(self.template.metadata.labels) && ` +
	`(!has(self.selector.matchLabels) || self.selector.matchLabels.all(k, k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k])) && ` +
	`(!has(self.selector.matchExpressions) || self.selector.matchExpressions.all(e, ` +
	`e.operator == 'In' ? (e.key in self.template.metadata.labels && has(e.values) && self.template.metadata.labels[e.key] in e.values) : ` +
	`e.operator == 'NotIn' ? (!(e.key in self.template.metadata.labels) || !has(e.values) || !(self.template.metadata.labels[e.key] in e.values)) : ` +
	`e.operator == 'Exists' ? e.key in self.template.metadata.labels : ` +
	`!(e.key in self.template.metadata.labels)))`

const selectorNotEmpty = `(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)`

// rules is the table of admission checks that crdpatch adds. README.md lists
// the fields rejected here as not supported; keep the two in step.
var rules = []rule{
	{
		name:    "pod spec",
		matches: shape(isPodSpec),
		apply: all(
			notSupported("ephemeralContainers", "resourceClaims", "runtimeClassName", "overhead", "resources",
				"schedulingGroup", "evictionResponders", "hostnameOverride"),
			onProperty("hostUsers", validation("self", "hostUsers: false (user namespaces) is not supported by skiff", "")),
			onProperty("os", validation("!has(self.name) || self.name == 'linux'", "only linux pods are supported by skiff", ".name")),
			minItems("containers", 1),
			enum("restartPolicy", "Always", "OnFailure", "Never"),
			defaults(map[string]any{"restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"}),
			enum("dnsPolicy", "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
			enum("preemptionPolicy", "PreemptLowerPriority", "Never"),
			minimum("terminationGracePeriodSeconds", 0),
			minimum("activeDeadlineSeconds", 1),
		),
	},
	{
		// The Pod's own spec (not a template): what upstream keeps from
		// changing once the pod exists. Rules on the field itself run only
		// when old and new both have it; the spec keeps the checks that
		// need the field's absence, written to stop at the first answer.
		name: "pod object spec",
		matches: func(s *apiextensionsv1.JSONSchemaProps, path []string) bool {
			return isPodSpec(*s) && len(path) == 1 && path[0] == "spec"
		},
		apply: all(
			onProperty("nodeName", validation("oldSelf == '' || self == oldSelf", "nodeName is immutable once set", "")),
			validation("has(self.nodeName) || !has(oldSelf.nodeName) || oldSelf.nodeName == ''", "nodeName is immutable once set", ".nodeName"),
			onProperty("containers", validation("size(self) == size(oldSelf)", "containers may not be added or removed", "")),
			validation("(!has(self.initContainers) && !has(oldSelf.initContainers)) || "+
				"(has(self.initContainers) ? size(self.initContainers) : 0) == (has(oldSelf.initContainers) ? size(oldSelf.initContainers) : 0)",
				"containers may not be added or removed", ".initContainers"),
			// restartPolicy is defaulted, so old and new always have it.
			onProperty("restartPolicy", validation("self == oldSelf", "restartPolicy is immutable", "")),
		),
	},
	{
		name:    "container",
		matches: shape(isContainer),
		apply: all(
			notSupported("resizePolicy", "restartPolicyRules"),
			enum("imagePullPolicy", "Always", "IfNotPresent", "Never"),
			enum("terminationMessagePolicy", "File", "FallbackToLogsOnError"),
			enum("restartPolicy", "Always"),
		),
	},
	{
		name: "container port",
		matches: func(s *apiextensionsv1.JSONSchemaProps, path []string) bool {
			return has(*s, "containerPort", "protocol")
		},
		apply: all(enum("protocol", "TCP", "UDP", "SCTP"), minimum("containerPort", 1)),
	},
	{
		name: "container resources",
		matches: func(s *apiextensionsv1.JSONSchemaProps, _ []string) bool {
			return has(*s, "limits", "requests", "claims")
		},
		apply: notSupported("claims"),
	},
	{
		name:    "pod volume",
		matches: shape(isVolume),
		apply: onlySupported("this volume type is",
			"name", "emptyDir", "hostPath", "configMap", "secret", "projected", "downwardAPI", "persistentVolumeClaim"),
	},
	{
		name: "projected volume source",
		matches: func(s *apiextensionsv1.JSONSchemaProps, _ []string) bool {
			return has(*s, "configMap", "secret", "downwardAPI", "serviceAccountToken")
		},
		apply: onlySupported("this projected source is", "configMap", "secret", "downwardAPI", "serviceAccountToken"),
	},
	{
		name:    "emptyDir",
		matches: func(s *apiextensionsv1.JSONSchemaProps, path []string) bool { return last(path) == "emptyDir" },
		apply:   enum("medium", "", "Memory"),
	},
	{
		name:    "hostPath",
		matches: func(s *apiextensionsv1.JSONSchemaProps, path []string) bool { return last(path) == "hostPath" },
		apply:   enum("type", "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"),
	},
	{
		name:    "label selector",
		matches: shape(isLabelSelector),
		apply: func(s *apiextensionsv1.JSONSchemaProps) {
			boundLabels(s, "matchLabels", maxSelectorLabels)
			p := s.Properties["matchExpressions"]
			p.MaxItems = ptr(int64(maxSelectorExpressions))
			if p.Items != nil && p.Items.Schema != nil {
				e := p.Items.Schema
				enum("operator", "In", "NotIn", "Exists", "DoesNotExist")(e)
				maxLength("key", maxLabelKeyLength)(e)
				if v, ok := e.Properties["values"]; ok {
					v.MaxItems = ptr(int64(maxSelectorValues))
					if v.Items != nil && v.Items.Schema != nil {
						v.Items.Schema.MaxLength = ptr(int64(maxLabelValueLength))
					}
					e.Properties["values"] = v
				}
				addRule(e, apiextensionsv1.ValidationRule{
					Rule:    "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
					Message: "values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist",
				})
			}
			s.Properties["matchExpressions"] = p
		},
	},
	{
		name: "embedded object metadata",
		matches: func(s *apiextensionsv1.JSONSchemaProps, path []string) bool {
			return last(path) == "metadata" && has(*s, "labels", "annotations")
		},
		apply: func(s *apiextensionsv1.JSONSchemaProps) { boundLabels(s, "labels", maxObjectLabels) },
	},
	{
		name:    "toleration",
		matches: shape(isToleration),
		apply: all(
			enum("operator", "Exists", "Equal"),
			enum("effect", "", "NoSchedule", "PreferNoSchedule", "NoExecute"),
			validation("!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''", "value must be empty when operator is Exists", ".value"),
		),
	},
	{
		name:    "taint",
		matches: shape(isTaint),
		apply:   enum("effect", "NoSchedule", "PreferNoSchedule", "NoExecute"),
	},
	{
		name:    "workload spec",
		matches: shape(isWorkloadSpec),
		apply: all(
			validation(selectorNotEmpty, "empty selector is invalid: it would select every pod", ".selector"),
			validation(selectorMatchesTemplate, "selector does not match template labels", ".template.metadata.labels"),
			validation("self.selector == oldSelf.selector", "selector is immutable", ".selector"),
			validation("!has(self.template.spec) || !has(self.template.spec.restartPolicy) || self.template.spec.restartPolicy == 'Always'", "only restartPolicy Always is supported for this workload", ".template.spec.restartPolicy"),
			enum("podManagementPolicy", "OrderedReady", "Parallel"),
			defaults(map[string]any{"replicas": 1, "revisionHistoryLimit": 10, "podManagementPolicy": "OrderedReady"}),
			func(s *apiextensionsv1.JSONSchemaProps) {
				if has(*s, "strategy", "progressDeadlineSeconds") { // Deployment
					defaults(map[string]any{"progressDeadlineSeconds": 600})(s)
				}
			},
			func(s *apiextensionsv1.JSONSchemaProps) {
				for _, name := range []string{"strategy", "updateStrategy"} {
					p, ok := s.Properties[name]
					if !ok {
						continue
					}
					if name == "strategy" {
						enum("type", "RollingUpdate", "Recreate")(&p)
					} else {
						enum("type", "RollingUpdate", "OnDelete")(&p)
					}
					s.Properties[name] = p
				}
				if p, ok := s.Properties["persistentVolumeClaimRetentionPolicy"]; ok {
					enum("whenDeleted", "Retain", "Delete")(&p)
					enum("whenScaled", "Retain", "Delete")(&p)
					s.Properties["persistentVolumeClaimRetentionPolicy"] = p
				}
			},
		),
	},
	{
		name:    "job spec",
		matches: shape(isJobSpec),
		apply: all(
			notSupported("managedBy"),
			minimum("parallelism", 0),
			minimum("completions", 0),
			minimum("activeDeadlineSeconds", 1),
			minimum("backoffLimit", 0),
			minimum("backoffLimitPerIndex", 0),
			minimum("maxFailedIndexes", 0),
			minimum("ttlSecondsAfterFinished", 0),
			enum("completionMode", "NonIndexed", "Indexed"),
			// backoffLimit has no structural default: upstream's depends on
			// backoffLimitPerIndex, and the Job defaulting webhook sets it
			// (a default here would hide whether the user gave a value).
			defaults(map[string]any{"completionMode": "NonIndexed", "suspend": false, "manualSelector": false}),
			enum("podReplacementPolicy", "TerminatingOrFailed", "Failed"),
			validation("!has(self.completionMode) || self.completionMode != 'Indexed' || has(self.completions)", "completions is required when completionMode is Indexed", ".completions"),
			validation("!has(self.backoffLimitPerIndex) || (has(self.completionMode) && self.completionMode == 'Indexed')", "requires completionMode Indexed", ".backoffLimitPerIndex"),
			validation("!has(self.maxFailedIndexes) || has(self.backoffLimitPerIndex)", "requires backoffLimitPerIndex", ".maxFailedIndexes"),
			validation("!has(self.podFailurePolicy) || !has(self.podReplacementPolicy) || self.podReplacementPolicy == 'Failed'", "must be Failed when podFailurePolicy is set", ".podReplacementPolicy"),
			validation("!has(self.selector) || (has(self.manualSelector) && self.manualSelector)", "selector may only be set together with manualSelector: true", ".selector"),
			validation("has(self.template.spec) && has(self.template.spec.restartPolicy) && self.template.spec.restartPolicy in ['OnFailure', 'Never']", "a Job's pods need restartPolicy OnFailure or Never", ".template.spec.restartPolicy"),
		),
	},
	{
		name: "pod failure policy rule",
		matches: func(s *apiextensionsv1.JSONSchemaProps, _ []string) bool {
			return has(*s, "action", "onExitCodes", "onPodConditions")
		},
		apply: func(s *apiextensionsv1.JSONSchemaProps) {
			enum("action", "FailJob", "FailIndex", "Ignore", "Count")(s)
			if p, ok := s.Properties["onExitCodes"]; ok {
				enum("operator", "In", "NotIn")(&p)
				s.Properties["onExitCodes"] = p
			}
			addRule(s, apiextensionsv1.ValidationRule{
				Rule:    "has(self.onExitCodes) != (has(self.onPodConditions) && size(self.onPodConditions) > 0)",
				Message: "exactly one of onExitCodes and onPodConditions is required",
			})
		},
	},
	{
		name:    "cron job spec",
		matches: func(s *apiextensionsv1.JSONSchemaProps, _ []string) bool { return has(*s, "schedule", "jobTemplate") },
		apply: all(
			enum("concurrencyPolicy", "Allow", "Forbid", "Replace"),
			defaults(map[string]any{"concurrencyPolicy": "Allow", "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1}),
		),
	},
	{
		name:    "service spec",
		matches: shape(isServiceSpec),
		apply: all(
			validation("!has(self.type) || self.type in ['ClusterIP', 'NodePort']", "only types ClusterIP and NodePort are supported by skiff", ".type"),
			notSupported("externalIPs", "externalName", "loadBalancerIP", "loadBalancerSourceRanges", "loadBalancerClass",
				"healthCheckNodePort", "allocateLoadBalancerNodePorts", "trafficDistribution"),
			validation("!has(self.ipFamilies) || self.ipFamilies.all(f, f == 'IPv4')", "only IPv4 is supported by skiff", ".ipFamilies"),
			validation("!has(self.ipFamilyPolicy) || self.ipFamilyPolicy != 'RequireDualStack'", "dual-stack services are not supported by skiff", ".ipFamilyPolicy"),
			enum("sessionAffinity", "None", "ClientIP"),
			defaults(map[string]any{"type": "ClusterIP", "sessionAffinity": "None"}),
			enum("externalTrafficPolicy", "Cluster", "Local"),
			enum("internalTrafficPolicy", "Cluster", "Local"),
			enum("ipFamilyPolicy", "SingleStack", "PreferDualStack", "RequireDualStack"),
			func(s *apiextensionsv1.JSONSchemaProps) {
				p := s.Properties["ports"]
				if p.Items != nil && p.Items.Schema != nil {
					enum("protocol", "TCP", "UDP")(p.Items.Schema)
					minimum("port", 1)(p.Items.Schema)
					minimum("nodePort", 0)(p.Items.Schema)
				}
				s.Properties["ports"] = p
			},
		),
	},
	{
		name:    "persistent volume spec",
		matches: shape(isPersistentVolumeSpec),
		apply: all(
			onlySupported("this volume source is", "accessModes", "capacity", "claimRef", "hostPath", "local",
				"nodeAffinity", "persistentVolumeReclaimPolicy", "storageClassName", "volumeMode"),
			enum("persistentVolumeReclaimPolicy", "Retain", "Delete"),
			enum("volumeMode", "Filesystem"),
			enum("accessModes[]", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
		),
	},
	{
		name:    "persistent volume claim spec",
		matches: shape(isClaimSpec),
		apply: all(
			notSupported("dataSource", "dataSourceRef", "volumeAttributesClassName"),
			enum("volumeMode", "Filesystem"),
			enum("accessModes[]", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
		),
	},
}

// Bounds that keep the estimated cost of the CEL rules within the API
// server's budget. Label values are bounded as upstream validates them; the
// counts are generous limits upstream does not state.
const (
	maxLabelValueLength    = 63
	maxLabelKeyLength      = 317 // a 253-character DNS prefix, "/", a 63-character name
	maxSelectorLabels      = 64
	maxSelectorExpressions = 32
	maxSelectorValues      = 128
	maxObjectLabels        = 128
)

// listBounds are the maxItems given to lists that hold CEL rules, by
// property name; other such lists get defaultListBound.
var listBounds = map[string]int64{
	"volumes":        256,
	"containers":     64,
	"initContainers": 64,
	"tolerations":    128,
	"sources":        32,
}

const defaultListBound = 64

// boundLabels bounds a label map: its size, and each value to the upstream
// label value length.
func boundLabels(s *apiextensionsv1.JSONSchemaProps, prop string, maxLabels int64) {
	p, ok := s.Properties[prop]
	if !ok {
		return
	}
	p.MaxProperties = ptr(maxLabels)
	if p.AdditionalProperties != nil && p.AdditionalProperties.Schema != nil {
		p.AdditionalProperties.Schema.MaxLength = ptr(int64(maxLabelValueLength))
	}
	s.Properties[prop] = p
}

// boundListsAroundRules gives maxItems to every list that holds, at any
// depth, a CEL rule. The API server estimates a rule's cost times the number
// of items of each list around it; an unbounded list is estimated from the
// largest request and pushes the cost over its budget.
func boundListsAroundRules(s *apiextensionsv1.JSONSchemaProps, name string) bool {
	holds := len(s.XValidations) > 0
	for prop, child := range s.Properties {
		if boundListsAroundRules(&child, prop) {
			holds = true
		}
		s.Properties[prop] = child
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		if boundListsAroundRules(s.AdditionalProperties.Schema, name) {
			holds = true
			if s.MaxProperties == nil {
				s.MaxProperties = ptr(int64(defaultListBound))
			}
		}
	}
	if s.Items != nil && s.Items.Schema != nil {
		if boundListsAroundRules(s.Items.Schema, name) {
			holds = true
			if s.MaxItems == nil {
				bound, ok := listBounds[name]
				if !ok {
					bound = defaultListBound
				}
				s.MaxItems = ptr(bound)
			}
		}
	}
	return holds
}

// maxLength bounds the length of a string property of the node.
func maxLength(prop string, n int64) func(*apiextensionsv1.JSONSchemaProps) {
	return func(s *apiextensionsv1.JSONSchemaProps) {
		p, ok := s.Properties[prop]
		if !ok {
			return
		}
		p.MaxLength = &n
		s.Properties[prop] = p
	}
}

func ptr[T any](v T) *T { return &v }

func last(path []string) string {
	if len(path) == 0 {
		return ""
	}
	return path[len(path)-1]
}
