{{/*
Model-worker pools. Each file ranges over .Values.modelWorker.pools and calls
(include "switchyard.poolCtx" $ctx) on (dict "root" $ "pool" $pool) first: it merges the pool
over poolDefaults and sets component, p, name, selector, engine, gpu and prefix.
*/}}

{{- define "switchyard.poolCtx" -}}
{{- $mw := .root.Values.modelWorker -}}
{{- $p := mergeOverwrite (deepCopy $mw.poolDefaults) (deepCopy .pool) -}}
{{- $_ := set $p "image" (mergeOverwrite (deepCopy $mw.image) ($p.image | default dict)) -}}
{{- $_ = set . "component" "model-worker" -}}
{{- $_ = set . "prefix" "SWITCHYARD_MODEL_WORKER_" -}}
{{- $_ = set . "p" $p -}}
{{- $_ = set . "values" $p -}}
{{- $_ = set . "name" (printf "%s-%s" (include "switchyard.componentName" .) $p.name | trunc 63 | trimSuffix "-") -}}
{{- $_ = set . "extra" (dict "switchyard.io/pool" $p.name) -}}
{{- $_ = set . "selector" (merge (include "switchyard.selectorLabels" . | fromYaml) .extra) -}}
{{- $_ = set . "gpu" (gt (int $p.gpu.count) 0) -}}
{{- if $p.engine.kind -}}
{{- $e := mergeOverwrite (deepCopy (index $mw.engines $p.engine.kind)) (deepCopy $p.engine) -}}
{{- $_ = set . "engine" $e -}}
{{- else -}}
{{- $_ = set . "engine" dict -}}
{{- end -}}
{{- end -}}

{{/* What the schema cannot say: pool names are unique, autoscaling bounds are ordered. */}}
{{- define "switchyard.pools.validate" -}}
{{- $seen := dict -}}
{{- range $pool := .Values.modelWorker.pools -}}
{{- if hasKey $seen $pool.name }}{{ fail (printf "modelWorker.pools: the name %q is used twice" $pool.name) }}{{ end -}}
{{- $_ := set $seen $pool.name true -}}
{{- $ctx := dict "root" $ "pool" $pool -}}
{{- include "switchyard.poolCtx" $ctx -}}
{{- $a := $ctx.p.autoscaling -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}{{ fail (printf "modelWorker.pools[%s].autoscaling: minReplicas > maxReplicas" $pool.name) }}{{ end -}}
{{- $k := $ctx.p.keda -}}
{{- if gt (int $k.minReplicaCount) (int $k.maxReplicaCount) }}{{ fail (printf "modelWorker.pools[%s].keda: minReplicaCount > maxReplicaCount" $pool.name) }}{{ end -}}
{{- end -}}
{{- end -}}

{{/* The model as a label value, when it is a valid one (else empty: the gateway's probes tell). */}}
{{- define "switchyard.modelLabel" -}}
{{- if regexMatch "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" . }}{{ . }}{{ end -}}
{{- end -}}

{{/* The worker's settings for a pool (its ConfigMap); the pool's settings map wins. */}}
{{- define "switchyard.pool.config" -}}
{{- $p := .p -}}
{{- $c := dict "LOG_LEVEL" $p.logLevel "MODEL_NAME" $p.model "MAX_CONCURRENCY" $p.maxConcurrency "MAX_QUEUE" $p.maxQueue -}}
{{- $_ := set $c "SHUTDOWN_GRACE_SECONDS" (sub $p.terminationGracePeriodSeconds 5) -}}
{{- with $p.aliases }}{{ $_ = set $c "MODEL_ALIASES" . }}{{ end -}}
{{- with .root.Values.otlpEndpoint }}{{ $_ = set $c "OTLP_ENDPOINT" . }}{{ end -}}
{{- if .engine.kind -}}
{{- $_ = set $c "BACKEND" "openai-compatible" -}}
{{- $_ = set $c "ENGINE_URL" (printf "http://127.0.0.1:%d" (int .engine.port)) -}}
{{- if .engine.namesModel }}{{ $_ = set $c "ENGINE_MODEL" $p.model }}{{ end -}}
{{- $_ = set $c "ENGINE_HEALTH_PATH" .engine.healthPath -}}
{{- $_ = set $c "ENGINE_METRICS_PATH" .engine.metricsPath -}}
{{- $_ = set $c "ENGINE_RUNNING_METRIC" .engine.runningMetric -}}
{{- $_ = set $c "ENGINE_WAITING_METRIC" .engine.waitingMetric -}}
{{- $_ = set $c "ENGINE_STARTUP_TIMEOUT_SECONDS" (mul .engine.startupProbe.periodSeconds .engine.startupProbe.failureThreshold) -}}
{{- else -}}
{{- $_ = set $c "BACKEND" $p.backend -}}
{{- with $p.modelPath }}{{ $_ = set $c "MODEL_PATH" . }}{{ end -}}
{{- if and .gpu (eq $p.backend "llamacpp") }}{{ $_ = set $c "N_GPU_LAYERS" -1 }}{{ end -}}
{{- end -}}
{{- if .gpu -}}
{{- $_ = set $c "REGISTRATION__GPU_COUNT" $p.gpu.count -}}
{{- with $p.gpu.type }}{{ $_ = set $c "REGISTRATION__GPU_TYPE" . }}{{ end -}}
{{- end -}}
{{- include "switchyard.settingsData" (dict "prefix" .prefix "settings" (merge (deepCopy $p.settings) $c)) -}}
{{- end -}}

{{/* The engine container beside the worker (vLLM, TGI, llama.cpp server). */}}
{{- define "switchyard.pool.engine" -}}
{{- $e := .engine -}}
{{- $p := .p -}}
- name: engine
  image: {{ include "switchyard.image" (dict "root" .root "image" $e.image) }}
  imagePullPolicy: {{ $e.image.pullPolicy }}
  {{- with $e.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  args:
    {{- range $e.defaultArgs }}
    - {{ . | replace "{model}" ($e.model | default $p.model) | replace "{served}" $p.model | replace "{port}" (toString $e.port) | replace "{gpus}" (toString (max 1 (int $p.gpu.count))) | replace "{cache}" $p.modelCache.mountPath | quote }}
    {{- end }}
    {{- range $e.args }}
    - {{ . | quote }}
    {{- end }}
  {{- include "switchyard.containerSecurityContext" . | nindent 2 }}
  ports:
    - name: engine
      containerPort: {{ $e.port }}
      protocol: TCP
  env:
    - name: HOME
      value: /tmp
    - name: XDG_CACHE_HOME
      value: /tmp/.cache
    - name: HF_HOME
      value: {{ printf "%s/huggingface" $p.modelCache.mountPath }}
    {{- with $e.hfTokenSecret.name }}
    - name: HF_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ . }}
          key: {{ $e.hfTokenSecret.key }}
    {{- end }}
    {{- with $e.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    httpGet:
      path: {{ $e.healthPath }}
      port: engine
    periodSeconds: {{ $e.startupProbe.periodSeconds }}
    failureThreshold: {{ $e.startupProbe.failureThreshold }}
    timeoutSeconds: 5
  readinessProbe:
    httpGet:
      path: {{ $e.healthPath }}
      port: engine
    periodSeconds: 10
    failureThreshold: 3
    timeoutSeconds: 5
  livenessProbe:
    httpGet:
      path: {{ $e.healthPath }}
      port: engine
    periodSeconds: 20
    failureThreshold: 3
    timeoutSeconds: 10
  resources:
    {{- $r := deepCopy $e.resources -}}
    {{- if .gpu }}
    {{- $_ := set $r "limits" (merge (dict "nvidia.com/gpu" (int $p.gpu.count)) ($r.limits | default dict)) }}
    {{- end }}
    {{- toYaml $r | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: model-cache
      mountPath: {{ $p.modelCache.mountPath }}
    {{- if .gpu }}
    - name: dshm
      mountPath: /dev/shm
    {{- end }}
{{- end -}}
