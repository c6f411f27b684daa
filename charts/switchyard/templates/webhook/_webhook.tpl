{{/* webhook pieces for the shared component templates (see _database.tpl). */}}
{{- define "switchyard.webhook.config" -}}
{{ include "switchyard.db.config" . }}
{{- $d := .values.dispatcher }}
{{- $e := .values.delivery }}
{{- $settings := dict
  "DISPATCHER_ENABLED" $d.enabled
  "DISPATCHER_CONCURRENCY" $d.concurrency
  "DISPATCHER_BATCH_SIZE" $d.batchSize
  "DISPATCHER_POLL_SECONDS" $d.pollSeconds
  "DISPATCHER_LEASE_SECONDS" $d.leaseSeconds
  "ENDPOINT_TIMEOUT_SECONDS" $e.timeoutSeconds
  "ENDPOINT_CONCURRENCY" $e.endpointConcurrency
  "MAX_RESPONSE_BYTES" $e.maxResponseBytes
  "RETRY_SCHEDULE_SECONDS" $e.retryScheduleSeconds
  "RETRY_JITTER" $e.retryJitter
  "AUTO_DISABLE_FAILURES" $e.autoDisable.failures
  "AUTO_DISABLE_AFTER_SECONDS" $e.autoDisable.afterSeconds
  "ROTATION_GRACE_SECONDS" $e.rotationGraceSeconds
  "RETENTION_SECONDS" $e.retentionSeconds
  "OPERATOR_TENANT" .values.operatorTenant
  "EGRESS_ALLOW_CIDRS" (list)
}}
{{- /* Deliveries go to public addresses only (the NetworkPolicy agrees): EGRESS_ALLOW_CIDRS is empty. */}}
{{- range $k, $_ := $settings }}
{{- if hasKey $.values.settings $k }}
{{- fail (printf "webhook.settings.%s: set by the chart's own webhook values (dispatcher, delivery, operatorTenant); set it there" $k) }}
{{- end }}
{{- end }}
{{ include "switchyard.settingsData" (dict "prefix" .prefix "settings" $settings) }}
{{- end -}}
{{- define "switchyard.webhook.secretEnv" -}}{{ include "switchyard.db.secretEnv" . }}{{- end -}}
{{- define "switchyard.webhook.secretInputs" -}}{{ include "switchyard.db.secretInputs" . }}{{- end -}}
{{- define "switchyard.webhook.needsApiToken" -}}{{- end -}}
