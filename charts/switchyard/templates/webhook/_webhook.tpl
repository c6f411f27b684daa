{{/* webhook pieces for the shared component templates (see _database.tpl). */}}
{{- define "switchyard.webhook.config" -}}
{{ include "switchyard.db.config" . }}
{{/* Deliveries go to public addresses only (the NetworkPolicy agrees), so no private range is allowed. */}}
{{ .prefix }}EGRESS_ALLOW_CIDRS: "[]"
{{- end -}}
{{- define "switchyard.webhook.secretEnv" -}}{{ include "switchyard.db.secretEnv" . }}{{- end -}}
{{- define "switchyard.webhook.secretInputs" -}}{{ include "switchyard.db.secretInputs" . }}{{- end -}}
{{- define "switchyard.webhook.needsApiToken" -}}{{- end -}}
