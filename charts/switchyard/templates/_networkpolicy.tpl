{{/*
One NetworkPolicy per component: default deny both ways, then only the traffic it needs.
ctx: dict root component values from (in-release components that call it) public (bool)
to (in-release components it calls) egress (extra egress rules)
*/}}

{{- define "switchyard.peerComponent" -}}
- podSelector:
    matchLabels:
      {{- include "switchyard.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "switchyard.networkPolicy" -}}
{{- $np := .root.Values.networkPolicy -}}
{{- if $np.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "switchyard.componentName" . }}
  labels:
    {{- include "switchyard.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "switchyard.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  ingress:
    {{- if .public }}
    - ports:
        - port: http
          protocol: TCP
      {{- with .values.networkPolicy.ingressFrom }}
      from:
        {{- toYaml . | nindent 8 }}
        {{- include "switchyard.peerComponent" (dict "root" $.root "component" "test") | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- if .from }}
    - ports:
        - port: http
          protocol: TCP
      from:
        {{- range .from }}
        {{- include "switchyard.peerComponent" (dict "root" $.root "component" .) | nindent 8 }}
        {{- end }}
    {{- end }}
    {{- with $np.metricsFrom }}
    - ports:
        - port: internal
          protocol: TCP
      from:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    {{- with .values.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      {{- with $np.dnsTo }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- if .root.Values.consul.enabled }}
    - ports:
        - port: {{ .root.Values.consul.port }}
          protocol: TCP
      to:
        {{- toYaml .root.Values.consul.networkPolicyTo | nindent 8 }}
    {{- end }}
    {{- /* Numbered ports for egress: not every CNI resolves a peer's named port. */}}
    {{- $ports := dict "gateway" 8080 "model-worker" 8101 "session" 8102 "webhook" 8103 }}
    {{- range .to }}
    - ports:
        - port: {{ index $ports . }}
          protocol: TCP
      to:
        {{- include "switchyard.peerComponent" (dict "root" $.root "component" .) | nindent 8 }}
    {{- end }}
    {{- with .egress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .values.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Egress to a store (Redis, a database) at its port. ctx: dict port to */}}
{{- define "switchyard.storeEgress" -}}
- ports:
    - port: {{ .port }}
      protocol: TCP
  to:
    {{- toYaml .to | nindent 4 }}
{{- end -}}
