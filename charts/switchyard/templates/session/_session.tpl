{{/* session pieces for the shared component templates (see _database.tpl). */}}
{{- define "switchyard.session.config" -}}{{ include "switchyard.db.config" . }}{{- end -}}
{{- define "switchyard.session.secretEnv" -}}{{ include "switchyard.db.secretEnv" . }}{{- end -}}
{{- define "switchyard.session.secretInputs" -}}{{ include "switchyard.db.secretInputs" . }}{{- end -}}
{{- define "switchyard.session.needsApiToken" -}}{{- end -}}
