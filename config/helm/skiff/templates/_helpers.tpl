{{/* Labels every object of the release carries. */}}
{{- define "skiff.labels" -}}
app.kubernetes.io/name: skiff
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Selector labels of one component: skiff.selector (list . "agent"). */}}
{{- define "skiff.selector" -}}
app.kubernetes.io/name: skiff
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* The webhook Service's DNS name. */}}
{{- define "skiff.webhookHost" -}}
{{ printf "skiff-webhook.%s.svc" .Release.Namespace }}
{{- end }}
