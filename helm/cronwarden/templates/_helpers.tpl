{{/* Chart name, overridable. */}}
{{- define "cronwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name when it already contains the chart name, else
<release>-<chart>. Truncated so that suffixed names stay within 63 characters.
*/}}
{{- define "cronwarden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cronwarden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pods; never change them after an install. */}}
{{- define "cronwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cronwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "cronwarden.labels" -}}
helm.sh/chart: {{ include "cronwarden.chart" . }}
{{ include "cronwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cronwarden
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the `helm test` pod: the chart's, but never matching the selector labels
(its app.kubernetes.io/name is <name>-test), so that no ReplicaSet adopts it and no
Service routes to it.
*/}}
{{- define "cronwarden.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "cronwarden.name" . | trunc 58 | trimSuffix "-" }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cronwarden.testLabels" -}}
helm.sh/chart: {{ include "cronwarden.chart" . }}
{{ include "cronwarden.testSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cronwarden
app.kubernetes.io/component: test
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "cronwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cronwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cronwarden.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Lease the replicas elect their leader with, in the release namespace. */}}
{{- define "cronwarden.leaseName" -}}
{{- default (include "cronwarden.fullname" .) .Values.highAvailability.leaseName }}
{{- end }}

{{/*
The namespaces whose Roles the chart creates: none in all-namespaces mode.
Returned as a YAML list to be read with fromYamlArray.
*/}}
{{- define "cronwarden.watchedNamespaces" -}}
{{- if .Values.watch.allNamespaces }}[]{{ else }}{{ toYaml .Values.watch.namespaces }}{{ end }}
{{- end }}

{{/*
The permissions the operator needs in each namespace it watches (and, in
all-namespaces mode, cluster-wide). Why each one is needed is in the chart README.
*/}}
{{- define "cronwarden.namespacedRules" -}}
# Read the tasks (kopf lists and watches them; the controller reads one before reconciling it).
- apiGroups: [cronwarden.io]
  resources: [scheduledtasks]
  verbs: [get, list, watch]
# Write the computed status through the status subresource only; the spec is never written.
- apiGroups: [cronwarden.io]
  resources: [scheduledtasks/status]
  verbs: [patch]
# Set blockOwnerDeletion on the CronJob's owner reference where the
# OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift).
# ScheduledTasks have no finalizers subresource: this grants no other request.
- apiGroups: [cronwarden.io]
  resources: [scheduledtasks/finalizers]
  verbs: [update]
# Keep each task's CronJob in sync: read it, server-side apply it (PATCH, and create
# when it is missing), watch it for drift. Never delete: garbage collection does.
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, list, watch, create, patch]
# Observe the runs: list and watch the Jobs the CronJobs start (by label; monitor
# mode without one, in the namespaces that hold monitored tasks).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch]
# Record run results, missed runs and drift as Events on the tasks, aggregated as
# client-go's recorder does: one Event per task and reason whose count is patched,
# read back after a restart to continue its count. List and watch only the Job
# controller's FailedCreate Events (a field selector on the server): they quote why
# the API server refuses a run's pods (Blocked, reason PodsNotAdmitted).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch, get, list, watch]
{{- end }}

{{/* Timings of a probe, from its values block. */}}
{{- define "cronwarden.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/*
The namespaces where ScheduledTasks are refused (tenancy values): the release
namespace and kube-system unless allowed. Returned as a YAML list to be read with
fromYamlArray; the admission policy and the operator's --exclude-namespace share it.
*/}}
{{- define "cronwarden.excludedNamespaces" -}}
{{- $excluded := list }}
{{- if not .Values.tenancy.allowTasksInOperatorNamespace }}
{{- $excluded = append $excluded .Release.Namespace }}
{{- end }}
{{- if not .Values.tenancy.allowTasksInKubeSystem }}
{{- $excluded = append $excluded "kube-system" }}
{{- end }}
{{- toYaml (uniq $excluded) }}
{{- end }}
