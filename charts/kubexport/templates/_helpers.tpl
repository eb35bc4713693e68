{{/*
The prefix of every object's name: fullnameOverride, else the release name (with "-kubexport"
appended unless it contains "kubexport"). 28 characters at most, so that the longest name,
"<prefix>-controller-manager-metrics-service", stays within 63.
*/}}
{{- define "kubexport.fullname" -}}
{{- $name := .Values.fullnameOverride -}}
{{- if not $name -}}
{{- $name = ternary .Release.Name (printf "%s-kubexport" .Release.Name) (contains "kubexport" .Release.Name) -}}
{{- end -}}
{{- $name | trunc 28 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object, besides each component's own. */}}
{{- define "kubexport.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubexport
{{- end -}}

{{/*
Selector labels: the same as config/, so that the NetworkPolicies, Services and PDBs select what
the kustomize deployment's do. The operator's are also on its RBAC, Services and NetworkPolicies.
*/}}
{{- define "kubexport.manager.selectorLabels" -}}
control-plane: controller-manager
app.kubernetes.io/name: kubexport
{{- end -}}

{{- define "kubexport.uploader.selectorLabels" -}}
app.kubernetes.io/name: kubexport-uploader
{{- end -}}

{{/* Labels of the objects that belong to the operator or to kubexport as a whole. */}}
{{- define "kubexport.manager.labels" -}}
{{ include "kubexport.labels" . }}
{{ include "kubexport.manager.selectorLabels" . }}
{{- end -}}

{{- define "kubexport.common.labels" -}}
{{ include "kubexport.labels" . }}
app.kubernetes.io/name: kubexport
{{- end -}}

{{- define "kubexport.uploader.labels" -}}
{{ include "kubexport.labels" . }}
{{ include "kubexport.uploader.selectorLabels" . }}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: the digest wins, the tag defaults to appVersion. */}}
{{- define "kubexport.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (toString ($image.tag | default $root.Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{- define "kubexport.manager.serviceAccountName" -}}
{{ include "kubexport.fullname" . }}-controller-manager
{{- end -}}

{{- define "kubexport.uploader.serviceAccountName" -}}
{{ include "kubexport.fullname" . }}-uploader
{{- end -}}

{{/* Pod scheduling fields shared by both Deployments; the argument is a component's values. */}}
{{- define "kubexport.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The egress rules to the object store and DNS, shared by converter and upload pods. */}}
{{- define "kubexport.storeAndDNSEgress" -}}
- to:
  {{- toYaml .Values.networkPolicy.objectStore | nindent 2 }}
- to:
  {{- toYaml .Values.networkPolicy.dns | nindent 2 }}
  ports:
  - port: 53
    protocol: UDP
  - port: 53
    protocol: TCP
{{- with .Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}
