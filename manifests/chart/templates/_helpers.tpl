{{/* Labels of every object: kustomize's app.kubernetes.io/name plus Helm's release labels. */}}
{{- define "peerpods.labels" -}}
app.kubernetes.io/name: peerpods
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "peerpods.hypervisorLabels" -}}
{{ include "peerpods.labels" . }}
app.kubernetes.io/component: hypervisor
{{- end -}}

{{- define "peerpods.image" -}}
{{ .repository }}:{{ .tag }}
{{- end -}}

{{/* The Secret the Deployment mounts as its serving certificate. */}}
{{- define "peerpods.tlsSecret" -}}
{{- if eq .Values.certs.mode "existing" -}}
{{ required "certs.existingSecret is required with certs.mode existing" .Values.certs.existingSecret }}
{{- else -}}
peerpods-tls
{{- end -}}
{{- end -}}

{{/*
The CA and serving certificate of certs.mode helm, made once per render: the Secret of an earlier
install when there is one (so an upgrade keeps the CA the webhook trusts), else a new pair for the
Service's DNS names. Returns a dict with ca.crt, tls.crt, tls.key (PEM).
*/}}
{{- define "peerpods.helmCerts" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace "peerpods-tls" -}}
{{- if and $existing (index ($existing.data | default dict) "ca.crt") -}}
{{- dict "ca.crt" (index $existing.data "ca.crt" | b64dec) "tls.crt" (index $existing.data "tls.crt" | b64dec) "tls.key" (index $existing.data "tls.key" | b64dec) | toJson -}}
{{- else -}}
{{- $service := printf "peerpods.%s.svc" .Release.Namespace -}}
{{- $ca := genCA "peerpods-ca" (int .Values.certs.validityDays) -}}
{{- $cert := genSignedCert $service nil (list $service (printf "%s.cluster.local" $service)) (int .Values.certs.validityDays) $ca -}}
{{- dict "ca.crt" $ca.Cert "tls.crt" $cert.Cert "tls.key" $cert.Key | toJson -}}
{{- end -}}
{{- end -}}

{{/* [a, b] → 'a', 'b' (a CEL list's items). */}}
{{- define "peerpods.quotedList" -}}
{{- $items := list -}}
{{- range . }}{{ $items = append $items (printf "'%s'" .) }}{{ end -}}
{{ join ", " $items }}
{{- end -}}
