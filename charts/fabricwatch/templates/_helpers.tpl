{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "fabricwatch.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the operator Deployment (also its --owner-deployment). */}}
{{- define "fabricwatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fabricwatch.labels" -}}
app.kubernetes.io/name: {{ include "fabricwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Operator pods. The controller's central workloads use name=fabricwatch plus their own
component, so the component label keeps the selectors apart. */}}
{{- define "fabricwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fabricwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "fabricwatch.operatorServiceAccount" -}}
{{- default (printf "%s-operator" (include "fabricwatch.fullname" .) | trunc 63 | trimSuffix "-") .Values.operator.serviceAccount.name -}}
{{- end -}}

{{- define "fabricwatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "fabricwatch.agentImage" -}}
{{- printf "%s:%s" .Values.agent.image.repository (default .Chart.AppVersion .Values.agent.image.tag) -}}
{{- end -}}

{{/* Restricted pod security (Pod Security Standards "restricted"). The image's nonroot user. */}}
{{- define "fabricwatch.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fabricwatch.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}
