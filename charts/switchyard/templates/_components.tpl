{{/*
The objects gateway, session and webhook share. Each is called with (dict "root" $ "key" K),
K one of gateway, session, webhook; "switchyard.ctx" fills in the rest.
*/}}

{{- define "switchyard.ctx" -}}
{{- $ports := dict "gateway" 8080 "modelWorker" 8101 "session" 8102 "webhook" 8103 -}}
{{- $_ := set . "component" (kebabcase .key) -}}
{{- $_ = set . "prefix" (printf "SWITCHYARD_%s_" (upper (snakecase .key))) -}}
{{- $_ = set . "port" (index $ports .key) -}}
{{- $_ = set . "values" (index .root.Values .key) -}}
{{- end -}}

{{- define "switchyard.service.configmap" -}}
{{- include "switchyard.ctx" . -}}
{{- $v := .values -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "switchyard.componentName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
data:
  {{ .prefix }}LOG_LEVEL: {{ $v.logLevel | quote }}
  {{ .prefix }}SHUTDOWN_GRACE_SECONDS: {{ sub $v.terminationGracePeriodSeconds 5 | quote }}
  {{- with .root.Values.otlpEndpoint }}
  {{ $.prefix }}OTLP_ENDPOINT: {{ . | quote }}
  {{- end }}
  {{- include (printf "switchyard.%s.config" .key) . | nindent 2 }}
  {{- include "switchyard.settingsData" (dict "prefix" .prefix "settings" $v.settings) | nindent 2 }}
{{- end -}}

{{- define "switchyard.service.deployment" -}}
{{- include "switchyard.ctx" . -}}
{{- $v := .values -}}
{{- if ne .key "gateway" }}{{ include "switchyard.db.requireForReplicas" . }}{{ end -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "switchyard.componentName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "switchyard.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "switchyard.labels" . | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print .root.Template.BasePath "/" .component "/configmap.yaml") .root | sha256sum }}
        checksum/secret: {{ include (printf "switchyard.%s.secretInputs" .key) . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "switchyard.serviceAccountName" . }}
      automountServiceAccountToken: {{ include (printf "switchyard.%s.needsApiToken" .key) . | default "false" }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with include "switchyard.imagePullSecrets" (dict "root" .root "pullSecrets" $v.image.pullSecrets) | trim }}{{ . | nindent 6 }}{{ end }}
      {{- include "switchyard.podSecurityContext" .root | nindent 6 }}
      {{- with include "switchyard.scheduling" . | trim }}{{ . | nindent 6 }}{{ end }}
      containers:
        - name: {{ .component }}
          image: {{ include "switchyard.image" (dict "root" .root "image" $v.image) }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- include "switchyard.containerSecurityContext" . | nindent 10 }}
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
            - name: internal
              containerPort: {{ .root.Values.internalPort }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "switchyard.componentName" . }}
          env:
            {{- include "switchyard.commonEnv" . | nindent 12 }}
            {{- include (printf "switchyard.%s.secretEnv" .key) . | nindent 12 }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- include "switchyard.probes" (dict "probes" $v.probes) | nindent 10 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if ne .key "gateway" }}
            - name: data
              mountPath: /data
            {{- end }}
            {{- with $v.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if ne .key "gateway" }}
        - name: data
          emptyDir:
            sizeLimit: {{ $v.dataDirSizeLimit }}
        {{- end }}
        {{- with $v.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}

{{/* The objects every component has, pools included. ctx: dict root key [pool] */}}
{{- define "switchyard.service.service" -}}
{{- include "switchyard.ctx" . -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "switchyard.componentName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
    {{- with .extraLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .values.service.type }}
  selector:
    {{- include "switchyard.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .values.service.port }}
      targetPort: http
      protocol: TCP
    - name: internal
      port: {{ .root.Values.internalPort }}
      targetPort: internal
      protocol: TCP
{{- end -}}

{{- define "switchyard.service.serviceaccount" -}}
{{- include "switchyard.ctx" . -}}
{{- if .values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "switchyard.serviceAccountName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
  {{- with .values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{/* ctx: dict root component name labels(selector) values(pdb) */}}
{{- define "switchyard.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
spec:
  {{- if .values.minAvailable }}
  minAvailable: {{ .values.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .values.maxUnavailable | default 1 }}
  {{- end }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- toYaml .selector | nindent 6 }}
{{- end -}}

{{/* ctx: dict root component name autoscaling metrics(list) */}}
{{- define "switchyard.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ .name }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ .name }}
  minReplicas: {{ .autoscaling.minReplicas }}
  maxReplicas: {{ .autoscaling.maxReplicas }}
  metrics:
    {{- toYaml .metrics | nindent 4 }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: {{ .autoscaling.scaleUpStabilizationSeconds }}
    scaleDown:
      stabilizationWindowSeconds: {{ .autoscaling.scaleDownStabilizationSeconds }}
      policies:
        - type: Pods
          value: 1
          periodSeconds: 60
      selectPolicy: Min
{{- end -}}

{{- define "switchyard.service.pdb" -}}
{{- include "switchyard.ctx" . -}}
{{- if .values.pdb.enabled -}}
{{- include "switchyard.pdb" (dict "root" .root "component" .component "name" (include "switchyard.componentName" .) "selector" (include "switchyard.selectorLabels" . | fromYaml) "values" .values.pdb) }}
{{- end }}
{{- end -}}

{{- define "switchyard.service.hpa" -}}
{{- include "switchyard.ctx" . -}}
{{- $a := .values.autoscaling -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}{{ fail (printf "%s.autoscaling: minReplicas > maxReplicas" .key) }}{{ end -}}
{{- if $a.enabled -}}
{{- $metrics := list (dict "type" "Resource" "resource" (dict "name" "cpu" "target" (dict "type" "Utilization" "averageUtilization" $a.targetCPUUtilizationPercentage))) -}}
{{- if $a.inFlight.enabled -}}
{{- $metrics = append $metrics (dict "type" "Pods" "pods" (dict "metric" (dict "name" $a.inFlight.metricName) "target" (dict "type" "AverageValue" "averageValue" (toString $a.inFlight.targetAverageValue)))) -}}
{{- end -}}
{{- include "switchyard.hpa" (dict "root" .root "component" .component "name" (include "switchyard.componentName" .) "autoscaling" $a "metrics" $metrics) }}
{{- end }}
{{- end -}}

{{- define "switchyard.service.servicemonitor" -}}
{{- include "switchyard.ctx" . -}}
{{- if .root.Values.metrics.serviceMonitor.enabled -}}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "switchyard.componentName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
    {{- with .root.Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "switchyard.selectorLabels" . | nindent 6 }}
      {{- with .matchExtra }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
  endpoints:
    - port: internal
      path: /metrics
      interval: {{ .root.Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ .root.Values.metrics.serviceMonitor.scrapeTimeout }}
      {{- if eq .key "modelWorker" }}
      # A worker serves one model: its series get model and pool from the pod's labels
      # (the dashboards and alerts filter workers by them; docs/metrics.md).
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_label_switchyard_io_model]
          targetLabel: model
        - sourceLabels: [__meta_kubernetes_pod_label_switchyard_io_pool]
          targetLabel: pool
      {{- end }}
{{- end }}
{{- end -}}
