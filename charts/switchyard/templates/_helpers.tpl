{{/* Names, labels and the pieces every component's pods share. */}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchyard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <fullname>-<component>; ctx: dict root component */}}
{{- define "switchyard.componentName" -}}
{{- printf "%s-%s" (include "switchyard.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Immutable selector labels: name, instance, component. ctx: dict root component */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels. ctx: dict root component */}}
{{- define "switchyard.labels" -}}
{{ include "switchyard.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: switchyard
helm.sh/chart: {{ include "switchyard.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* registry/repository[:tag][@digest]. ctx: dict root image */}}
{{- define "switchyard.image" -}}
{{- $registry := .image.registry | default .root.Values.global.image.registry -}}
{{- $ref := .image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry .image.repository }}{{ end -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/* ctx: dict root pullSecrets */}}
{{- define "switchyard.imagePullSecrets" -}}
{{- $all := concat .root.Values.global.imagePullSecrets (.pullSecrets | default list) | uniq -}}
{{- if $all }}
imagePullSecrets:
{{- range $all }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* ctx: dict root component values */}}
{{- define "switchyard.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- .values.serviceAccount.name | default (include "switchyard.componentName" .) -}}
{{- else -}}
{{- .values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* PodSecurity "restricted" for pods and containers. */}}
{{- define "switchyard.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.securityContext.runAsUser }}
  runAsGroup: {{ .Values.securityContext.runAsGroup }}
  fsGroup: {{ .Values.securityContext.fsGroup }}
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "switchyard.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  privileged: false
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Spread over nodes (and zones) unless the values give their own. ctx: dict root component values extra */}}
{{- define "switchyard.scheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
topologySpreadConstraints:
{{- if .values.topologySpreadConstraints }}
  {{- toYaml .values.topologySpreadConstraints | nindent 2 }}
{{- else }}
  {{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "switchyard.selectorLabels" $ | nindent 8 }}
        {{- with $.extra }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Env every service gets: identity (also for traces), bind address, logs, Consul. ctx: dict root prefix port */}}
{{- define "switchyard.commonEnv" -}}
- name: {{ .prefix }}INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- /* The trace resource's k8s.pod.name and k8s.namespace.name (read by telemetry). */}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: {{ .prefix }}HOST
  value: "0.0.0.0"
- name: {{ .prefix }}PORT
  value: {{ .port | quote }}
- name: {{ .prefix }}INTERNAL_PORT
  value: {{ .root.Values.internalPort | quote }}
{{- if .root.Values.consul.enabled }}
{{- if not .root.Values.consul.address }}
- name: HOST_IP
  valueFrom:
    fieldRef:
      fieldPath: status.hostIP
{{- end }}
- name: {{ .prefix }}CONSUL__ADDRESS
  value: {{ .root.Values.consul.address | default (printf "%s://$(HOST_IP):%d" .root.Values.consul.scheme (int .root.Values.consul.port)) | quote }}
{{- with .root.Values.consul.datacenter }}
- name: {{ $.prefix }}CONSUL__DATACENTER
  value: {{ . | quote }}
{{- end }}
{{- if .root.Values.consul.token.existingSecret }}
- name: {{ .prefix }}CONSUL__TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.consul.token.existingSecret }}
      key: {{ .root.Values.consul.token.key }}
{{- end }}
- name: {{ .prefix }}REGISTRATION__SERVICE_NAME
  value: {{ include "switchyard.componentName" . | quote }}
- name: {{ .prefix }}REGISTRATION__ADVERTISE_ADDRESS
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: {{ .prefix }}REGISTRATION__ADVERTISE_PORT
  value: {{ .port | quote }}
{{- else }}
- name: {{ .prefix }}REGISTRATION__ENABLED
  value: "false"
{{- end }}
{{- end -}}

{{/* Probes on the services' real endpoints. ctx: dict probes startupPath */}}
{{- define "switchyard.probes" -}}
startupProbe:
  httpGet:
    path: {{ .startupPath | default "/healthz" }}
    port: internal
  periodSeconds: {{ .probes.startup.periodSeconds }}
  failureThreshold: {{ .probes.startup.failureThreshold }}
  timeoutSeconds: {{ .probes.startup.timeoutSeconds }}
readinessProbe:
  httpGet:
    path: /readyz
    port: internal
  periodSeconds: {{ .probes.readiness.periodSeconds }}
  failureThreshold: {{ .probes.readiness.failureThreshold }}
  timeoutSeconds: {{ .probes.readiness.timeoutSeconds }}
livenessProbe:
  httpGet:
    path: /healthz
    port: internal
  periodSeconds: {{ .probes.liveness.periodSeconds }}
  failureThreshold: {{ .probes.liveness.failureThreshold }}
  timeoutSeconds: {{ .probes.liveness.timeoutSeconds }}
{{- end -}}

{{/* Prefixed settings from a values map (SETTING: value), as ConfigMap data. ctx: dict prefix settings */}}
{{- define "switchyard.settingsData" -}}
{{- range $k, $v := .settings }}
{{ printf "%s%s" $.prefix $k }}: {{ if kindIs "string" $v }}{{ $v | quote }}{{ else }}{{ toJson $v | quote }}{{ end }}
{{- end }}
{{- end -}}

{{/* The first pool that chats (not embeddings-only): what NOTES and helm test ask. */}}
{{- define "switchyard.chatModel" -}}
{{- $found := "" -}}
{{- range .Values.modelWorker.pools -}}
{{- if and (not $found) (ne (.backend | default "llamacpp") "embeddings") }}{{ $found = .model }}{{ end -}}
{{- end -}}
{{- $found | default (first .Values.modelWorker.pools).model -}}
{{- end -}}
