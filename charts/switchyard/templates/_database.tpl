{{/*
Session and webhook: a data dir, and a database whose URL comes from a Secret (the chart's
own or an existing one), migrated by a pre-install/pre-upgrade hook Job.
*/}}

{{- define "switchyard.db.enabled" -}}
{{- $db := .values.database -}}
{{- if or $db.url $db.existingSecret }}true{{ end -}}
{{- end -}}

{{/*
Several pods need the shared database: each pod's embedded SQLite file would be its own (its
own conversations; its own webhook queue, delivered by its dispatcher alone).
*/}}
{{- define "switchyard.db.requireForReplicas" -}}
{{- if not (include "switchyard.db.enabled" .) -}}
{{- if .values.autoscaling.enabled -}}
{{- fail (printf "%s.autoscaling.enabled needs %s.database (url or existingSecret): without it every pod keeps its own SQLite file" .key .key) -}}
{{- else if gt (int .values.replicas) 1 -}}
{{- fail (printf "%s.replicas is %d: more than one pod needs %s.database (url or existingSecret); without it every pod keeps its own SQLite file" .key (int .values.replicas) .key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "switchyard.db.secretName" -}}
{{- .values.database.existingSecret | default (printf "%s-db" (include "switchyard.componentName" .)) -}}
{{- end -}}

{{- define "switchyard.db.config" -}}
{{ .prefix }}DATA_DIR: "/data"
{{- /* The embedded SQLite file (per pod), or migrations turned off: the service migrates itself. */}}
{{ .prefix }}AUTO_MIGRATE: {{ or (not (include "switchyard.db.enabled" .)) (not .values.migrations.enabled) | toString | quote }}
{{- end -}}

{{- define "switchyard.internalTokenSecretName" -}}
{{- .Values.internalToken.existingSecret | default (printf "%s-internal-token" (include "switchyard.fullname" .)) -}}
{{- end -}}

{{- define "switchyard.db.secretEnv" -}}
- name: {{ .prefix }}INTERNAL_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.internalTokenSecretName" .root }}
      key: {{ .root.Values.internalToken.key }}
{{- if include "switchyard.db.enabled" . }}
- name: {{ .prefix }}DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.db.secretName" . }}
      key: {{ .values.database.existingSecretKey }}
{{- end }}
{{- end -}}

{{- define "switchyard.db.secretInputs" -}}
{{- toJson (dict "database" .values.database "internalToken" .root.Values.internalToken) -}}
{{- end -}}

{{/* The Secret the Deployment reads (hook=false) or the hook Job reads (hook=true). */}}
{{- define "switchyard.db.secret" -}}
{{- include "switchyard.ctx" . -}}
{{- if and (index .root.Values .key).enabled .values.database.url (not .values.database.existingSecret) -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "switchyard.db.secretName" . }}{{ if .hook }}-migrate{{ end }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
  {{- if .hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- end }}
type: Opaque
data:
  {{ .values.database.existingSecretKey }}: {{ .values.database.url | b64enc | quote }}
{{- end }}
{{- end -}}

{{/* Migrations run before any pod of the new release starts; readiness checks the schema. */}}
{{- define "switchyard.db.migrationJob" -}}
{{- include "switchyard.ctx" . -}}
{{- $v := .values -}}
{{- if and $v.enabled $v.migrations.enabled (include "switchyard.db.enabled" .) -}}
{{- $name := printf "%s-migrate" (include "switchyard.componentName" .) -}}
{{- $secret := include "switchyard.db.secretName" . -}}
{{- if not $v.database.existingSecret }}{{ $secret = printf "%s-migrate" $secret }}{{ end -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- include "switchyard.labels" (dict "root" .root "component" (printf "%s-migrate" .component)) | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $v.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ $v.migrations.activeDeadlineSeconds }}
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels:
        {{- include "switchyard.labels" (dict "root" .root "component" (printf "%s-migrate" .component)) | nindent 8 }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with include "switchyard.imagePullSecrets" (dict "root" .root "pullSecrets" $v.image.pullSecrets) | trim }}{{ . | nindent 6 }}{{ end }}
      {{- include "switchyard.podSecurityContext" .root | nindent 6 }}
      containers:
        - name: migrate
          image: {{ include "switchyard.image" (dict "root" .root "image" $v.image) }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: ["migrate"]
          {{- include "switchyard.containerSecurityContext" . | nindent 10 }}
          env:
            - name: {{ .prefix }}LOG_LEVEL
              value: {{ $v.logLevel | quote }}
            - name: {{ .prefix }}DATA_DIR
              value: /tmp/data
            - name: {{ .prefix }}DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $secret }}
                  key: {{ $v.database.existingSecretKey }}
          resources:
            {{- toYaml $v.migrations.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{{- end }}
{{- end -}}

{{/*
The migration Job's NetworkPolicy: DNS and the database, nothing in. A hook like the Job, so
that it exists before the Job's pod starts, in a namespace that denies by default too.
*/}}
{{- define "switchyard.db.migrationNetworkPolicy" -}}
{{- include "switchyard.ctx" . -}}
{{- $v := .values -}}
{{- if and .root.Values.networkPolicy.enabled $v.enabled $v.migrations.enabled (include "switchyard.db.enabled" .) -}}
{{- $ctx := dict "root" .root "component" (printf "%s-migrate" .component) -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "switchyard.componentName" $ctx }}
  labels:
    {{- include "switchyard.labels" $ctx | nindent 4 }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  podSelector:
    matchLabels:
      {{- include "switchyard.selectorLabels" $ctx | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  ingress: []
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      {{- with .root.Values.networkPolicy.dnsTo }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- include "switchyard.storeEgress" (dict "port" $v.database.port "to" $v.database.networkPolicyTo) | nindent 4 }}
{{- end }}
{{- end -}}
