{{/* Gateway pieces for the shared component templates. */}}

{{- define "switchyard.gateway.authSecretName" -}}
{{- .root.Values.gateway.auth.existingSecret | default (printf "%s-gateway-auth" (include "switchyard.fullname" .root)) -}}
{{- end -}}

{{- define "switchyard.redisSecretName" -}}
{{- .Values.redis.existingSecret | default (printf "%s-redis" (include "switchyard.fullname" .)) -}}
{{- end -}}

{{- define "switchyard.gateway.config" -}}
{{- if .root.Values.consul.enabled }}
{{ .prefix }}DISCOVERY: "consul"
{{ .prefix }}WORKER_SERVICE: {{ include "switchyard.componentName" (dict "root" .root "component" "model-worker") | quote }}
{{- else }}
{{ .prefix }}DISCOVERY: "kubernetes"
{{ .prefix }}WORKER_SERVICE: {{ include "switchyard.componentName" (dict "root" .root "component" "model-worker") | quote }}
{{ .prefix }}KUBERNETES__PORT_NAME: "http"
{{- end }}
{{- range $key := list "session" "webhook" }}
{{- $v := index $.root.Values $key }}
{{- if $v.enabled }}
{{ $.prefix }}{{ upper $key }}_URL: {{ printf "http://%s:%d" (include "switchyard.componentName" (dict "root" $.root "component" $key)) (int $v.service.port) | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "switchyard.gateway.secretEnv" -}}
{{- $auth := .root.Values.gateway.auth -}}
- name: {{ .prefix }}API_KEY_HASHES
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.gateway.authSecretName" . }}
      key: {{ $auth.apiKeyHashesKey }}
      optional: true
- name: {{ .prefix }}ADMIN_KEY_HASHES
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.gateway.authSecretName" . }}
      key: {{ $auth.adminKeyHashesKey }}
      optional: true
{{- range $key := list "session" "webhook" }}
{{- if (index $.root.Values $key).enabled }}
- name: {{ $.prefix }}{{ upper $key }}_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.internalTokenSecretName" $.root }}
      key: {{ $.root.Values.internalToken.key }}
{{- end }}
{{- end }}
{{- if or .root.Values.redis.url .root.Values.redis.existingSecret }}
- name: {{ .prefix }}REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "switchyard.redisSecretName" .root }}
      key: {{ .root.Values.redis.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* What the gateway's Secrets are made from: a change rolls the pods. */}}
{{- define "switchyard.gateway.secretInputs" -}}
{{- toJson (dict "auth" .root.Values.gateway.auth "redis" .root.Values.redis "internalToken" .root.Values.internalToken) -}}
{{- end -}}

{{/* Only Kubernetes discovery needs the API token. */}}
{{- define "switchyard.gateway.needsApiToken" -}}
{{- if not .root.Values.consul.enabled }}true{{ end -}}
{{- end -}}
