{{/*
brupop.labels: the labels of every object of a component; the argument is the component
(agent, apiserver or brupop-controller).
*/}}
{{- define "brupop.labels" -}}
app.kubernetes.io/component: {{ . }}
app.kubernetes.io/managed-by: brupop
app.kubernetes.io/part-of: brupop
brupop.bottlerocket.aws/component: {{ . }}
{{- end }}

{{/*
brupop.podLabels: the labels of a component's pods, podLabels plus the component label, which
podLabels cannot override (the selectors need it). Argument: (dict "root" $ "component" NAME).
*/}}
{{- define "brupop.podLabels" -}}
{{- toYaml (merge (dict "brupop.bottlerocket.aws/component" .component) (.root.Values.podLabels | default dict)) }}
{{- end }}

{{/*
brupop.imagePullSecrets: the imagePullSecrets field from image_pull_secrets, a list of names or
of {name: ...}, or upstream's form, a YAML string holding such a list. Argument: $.
*/}}
{{- define "brupop.imagePullSecrets" -}}
{{- $secrets := .Values.image_pull_secrets -}}
{{- if kindIs "string" $secrets }}{{ $secrets = fromYamlArray $secrets }}{{ end -}}
{{- with $secrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ if kindIs "string" . }}{{ . | quote }}{{ else }}{{ .name | quote }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
brupop.nodeAffinity: required Linux on amd64 or arm64, plus the extra match expressions given.
*/}}
{{- define "brupop.nodeAffinity" -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      - matchExpressions:
          - key: kubernetes.io/os
            operator: In
            values:
              - linux
          {{- with . }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          - key: kubernetes.io/arch
            operator: In
            values:
              - amd64
              - arm64
{{- end }}

{{/*
brupop.loggingEnv: the logging variables of a component. Argument: (dict "root" $ "filter" F).
*/}}
{{- define "brupop.loggingEnv" -}}
- name: LOGGING_FORMATTER
  value: {{ .root.Values.logging.formatter | quote }}
- name: LOGGING_ANSI_ENABLED
  value: {{ .root.Values.logging.ansi_enabled | quote }}
- name: TRACING_FILTER_DIRECTIVE
  value: {{ .filter | quote }}
{{- end }}
