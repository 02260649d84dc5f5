{{- /*
What goes into a component's pod. Every template here takes the component's
context: (dict "root" $ "name" <component> "c" <its settings> "env" <its env>),
made by components.yaml. Nothing here names a component: what differs between
them is in values.yaml.
*/ -}}

{{/*
The environment of a component, as YAML:
  config:      NAME -> string, the plain variables (the component's ConfigMap)
  fromSources: [EnvVar], the variables read from a Secret or from the pod
HTTP_PORT and <NAME>_PORT from its ports; the Kafka connection when it uses
Kafka (c.kafka); then c.env, whose entries are strings (templates allowed; one
that renders empty is left out) or EnvVar sources ({valueFrom: ...}).
*/}}
{{- define "pizza-shop.env" -}}
{{- $root := .root }}
{{- $config := dict }}
{{- $fromSources := list }}
{{- range $port, $number := .c.ports }}
{{- $var := printf "%s_PORT" ($port | replace "-" "_" | upper) }}
{{- $_ := set $config $var (toString $number) }}
{{- end }}
{{- $auth := $root.Values.kafka.auth.type }}
{{- if .c.kafka }}
{{- $_ := set $config "KAFKA_BOOTSTRAP_SERVERS" (include "pizza-shop.bootstrapServers" $root) }}
{{- range $prop, $value := $root.Values.kafka.config }}
{{- $_ := set $config (printf "KAFKA_%s" ($prop | replace "." "_" | upper)) (toString $value) }}
{{- end }}
{{- $proto := include "pizza-shop.securityProtocol" $root }}
{{- if ne $proto "PLAINTEXT" }}
{{- $_ := set $config "KAFKA_SECURITY_PROTOCOL" $proto }}
{{- end }}
{{- if include "pizza-shop.kafkaTls" $root }}
{{- $_ := set $config "KAFKA_SSL_CA_LOCATION" "/etc/kafka/ca/ca.crt" }}
{{- end }}
{{- if eq $auth "scram-sha-512" }}
{{- $_ := set $config "KAFKA_SASL_MECHANISMS" "SCRAM-SHA-512" }}
{{- $_ := set $config "KAFKA_SASL_USERNAME" (include "pizza-shop.kafkaUser" .) }}
{{- else if eq $auth "tls" }}
{{- $_ := set $config "KAFKA_SSL_CERTIFICATE_LOCATION" "/etc/kafka/user/user.crt" }}
{{- $_ := set $config "KAFKA_SSL_KEY_LOCATION" "/etc/kafka/user/user.key" }}
{{- end }}
{{- end }}
{{- range $var, $value := .c.env }}
{{- if kindIs "map" $value }}
{{- $source := include "pizza-shop.tpl" (dict "root" $root "value" (toYaml $value)) | fromYaml }}
{{- $fromSources = append $fromSources (merge (dict "name" $var) $source) }}
{{- else }}
{{- $text := include "pizza-shop.tpl" (dict "root" $root "value" $value) }}
{{- if or $text (not (contains "{{" (toString $value))) }}
{{- $_ := set $config $var $text }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .c.kafka (eq $auth "scram-sha-512") }}
{{- $password := dict "secretKeyRef" (dict "name" (include "pizza-shop.kafkaUser" .) "key" "password") }}
{{- $fromSources = append $fromSources (dict "name" "KAFKA_SASL_PASSWORD" "valueFrom" $password) }}
{{- end }}
{{- toYaml (dict "config" $config "fromSources" $fromSources) }}
{{- end }}

{{/*
Volumes and their mounts, as YAML {volumes: [...], mounts: [...]}: c.volumes
(name -> mountPath, optional readOnly/subPath, and the volume source), then the
Kafka CA and client certificate when the component uses Kafka over TLS.
*/}}
{{- define "pizza-shop.volumes" -}}
{{- $volumes := list }}
{{- $mounts := list }}
{{- $own := include "pizza-shop.tpl" (dict "root" .root "value" (toYaml (.c.volumes | default dict))) | fromYaml }}
{{- range $name, $v := $own }}
{{- $mount := dict "name" $name "mountPath" $v.mountPath }}
{{- range $key := list "readOnly" "subPath" }}
{{- if hasKey $v $key }}{{ $_ := set $mount $key (get $v $key) }}{{ end }}
{{- end }}
{{- $mounts = append $mounts $mount }}
{{- $volumes = append $volumes (merge (dict "name" $name) (omit $v "mountPath" "readOnly" "subPath")) }}
{{- end }}
{{- if .c.kafka }}
{{- if include "pizza-shop.kafkaTls" .root }}
{{- $items := list (dict "key" .root.Values.kafka.tls.caKey "path" "ca.crt") }}
{{- $volumes = append $volumes (dict "name" "kafka-ca" "secret" (dict "secretName" (include "pizza-shop.caSecret" .root) "items" $items)) }}
{{- $mounts = append $mounts (dict "name" "kafka-ca" "mountPath" "/etc/kafka/ca" "readOnly" true) }}
{{- end }}
{{- if eq .root.Values.kafka.auth.type "tls" }}
{{- $items := list (dict "key" "user.crt" "path" "user.crt") (dict "key" "user.key" "path" "user.key") }}
{{- $volumes = append $volumes (dict "name" "kafka-user" "secret" (dict "secretName" (include "pizza-shop.kafkaUser" .) "items" $items)) }}
{{- $mounts = append $mounts (dict "name" "kafka-user" "mountPath" "/etc/kafka/user" "readOnly" true) }}
{{- end }}
{{- end }}
{{- toYaml (dict "volumes" $volumes "mounts" $mounts) }}
{{- end }}

{{/* An HTTP probe on the http port from a probes.<kind> block. */}}
{{- define "pizza-shop.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/* The pod template of a component's Deployment. */}}
{{- define "pizza-shop.podTemplate" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $storage := include "pizza-shop.volumes" . | fromYaml }}
{{- $annotations := dict "checksum/config" (toJson .env.config | sha256sum) "kubectl.kubernetes.io/default-container" .name }}
{{- range $key, $value := $c.podAnnotations }}
{{- $text := include "pizza-shop.tpl" (dict "root" $root "value" $value) }}
{{- if or $text (not (contains "{{" (toString $value))) }}
{{- $_ := set $annotations $key $text }}
{{- end }}
{{- end }}
metadata:
  labels:
    {{- include "pizza-shop.componentLabels" . | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- toYaml $annotations | nindent 4 }}
spec:
  {{- if $root.Values.serviceAccount.create }}
  serviceAccountName: {{ include "pizza-shop.componentName" . }}
  {{- end }}
  automountServiceAccountToken: false
  # Kubernetes would inject <SERVICE>_PORT variables; a Service named
  # kafka-... would inject KAFKA_* ones, which the services read as
  # librdkafka properties (unknown ones are fatal).
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $c.podSecurityContext | nindent 4 }}
  {{- with $c.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "pizza-shop.image" . | quote }}
      imagePullPolicy: {{ $c.image.pullPolicy }}
      {{- with $c.ports }}
      ports:
        {{- range $port, $number := . }}
        - name: {{ $port }}
          containerPort: {{ $number }}
          protocol: TCP
        {{- end }}
      {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "pizza-shop.componentName" . }}-env
      {{- $env := concat .env.fromSources ($c.extraEnv | default list) }}
      {{- with $env }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- range $kind := list "startup" "liveness" "readiness" }}
      {{- with get ($c.probes | default dict) $kind }}
      {{ $kind }}Probe:
        {{- include "pizza-shop.probe" . | nindent 8 }}
      {{- end }}
      {{- end }}
      resources:
        {{- toYaml $c.resources | nindent 8 }}
      securityContext:
        {{- toYaml $c.securityContext | nindent 8 }}
      {{- with $storage.mounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- with $storage.volumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $c.topologySpreadConstraints }}
  {{- $selector := include "pizza-shop.componentSelectorLabels" . | fromYaml }}
  {{- $constraints := list }}
  {{- range $c.topologySpreadConstraints }}
  {{- $constraints = append $constraints (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" $selector))) }}
  {{- end }}
  topologySpreadConstraints:
    {{- toYaml $constraints | nindent 4 }}
  {{- end }}
{{- end }}
