{{/* Names and labels. */}}
{{- define "pizza-shop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pizza-shop.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pizza-shop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pizza-shop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pizza-shop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pizza-shop.labels" -}}
helm.sh/chart: {{ include "pizza-shop.chart" . }}
{{ include "pizza-shop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pizza-shop
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of component .name; call with (dict "root" $ "name" $name). */}}
{{- define "pizza-shop.componentLabels" -}}
{{ include "pizza-shop.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "pizza-shop.componentSelectorLabels" -}}
{{ include "pizza-shop.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{- define "pizza-shop.componentName" -}}
{{- printf "%s-%s" (include "pizza-shop.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Deep merge of two maps: .over wins, maps merge key by key, a null in .over
removes the key. (sprig's merge/mergeOverwrite cannot override with false/0/"".)
Returns YAML; use with fromYaml.
*/}}
{{- define "pizza-shop.deepMerge" -}}
{{- $out := deepCopy .base }}
{{- range $k, $v := .over }}
{{- if kindIs "invalid" $v }}
{{- $_ := unset $out $k }}
{{- else if and (kindIs "map" $v) (kindIs "map" (get $out $k)) }}
{{- $_ := set $out $k (include "pizza-shop.deepMerge" (dict "base" (get $out $k) "over" $v) | fromYaml) }}
{{- else }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* The effective settings of component .name: default merged with components.<name>. */}}
{{- define "pizza-shop.component" -}}
{{- $c := index .root.Values.components .name }}
{{- include "pizza-shop.deepMerge" (dict "base" .root.Values.default "over" $c) }}
{{- end }}

{{/* Names of the enabled components, sorted, as a YAML list. */}}
{{- define "pizza-shop.enabledComponents" -}}
{{- $names := list }}
{{- range $name, $c := .Values.components }}
{{- if $c.enabled }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- toYaml $names }}
{{- end }}

{{/*
A string of values rendered as a template when it holds one ("{{ ... }}"), so
that values can name the release's objects. Call with (dict "root" $ "value" v).
*/}}
{{- define "pizza-shop.tpl" -}}
{{- $v := toString .value }}
{{- if contains "{{" $v }}{{ tpl $v .root }}{{ else }}{{ $v }}{{ end }}
{{- end }}

{{/*
URL of component .name's port .port inside the cluster: the Service's http
port, or its port of that name. Used by values (STATUS_URL, TARGET_URL).
*/}}
{{- define "pizza-shop.url" -}}
{{- $c := include "pizza-shop.component" (dict "root" .root "name" .name) | fromYaml }}
{{- $port := get $c.ports .port }}
{{- if eq .port "http" }}{{ $port = $c.service.port }}{{ end }}
{{- if not $port }}
{{- fail (printf "components.%s has no port %s" .name .port) }}
{{- end }}
{{- printf "http://%s:%d" (include "pizza-shop.componentName" (dict "root" .root "name" .name)) (int $port) }}
{{- end }}

{{/*
The shop's front door: the enabled component with public: true (the webapp).
The Ingress, the helm test and NOTES point at it; "" when it is disabled.
*/}}
{{- define "pizza-shop.frontDoor" -}}
{{- $found := "" }}
{{- range $name := include "pizza-shop.enabledComponents" . | fromYamlArray }}
{{- if and (not $found) (index $.Values.components $name).public }}
{{- $found = $name }}
{{- end }}
{{- end }}
{{- $found }}
{{- end }}

{{- define "pizza-shop.image" -}}
{{- $img := .c.image }}
{{- $repo := $img.repository | default (printf "%s%s" $img.repositoryPrefix .name) }}
{{- printf "%s:%s" $repo (toString $img.tag) }}
{{- end }}

{{/* Kafka connection. */}}
{{- define "pizza-shop.kafkaTls" -}}
{{- if or .Values.kafka.tls.enabled (eq .Values.kafka.auth.type "tls") }}true{{ end }}
{{- end }}

{{- define "pizza-shop.kafkaNamespace" -}}
{{- .Values.strimzi.kafkaNamespace | default .Release.Namespace }}
{{- end }}

{{- define "pizza-shop.kafkaPort" -}}
{{- if include "pizza-shop.kafkaTls" . }}{{ .Values.strimzi.listeners.tlsPort }}{{ else }}{{ .Values.strimzi.listeners.plainPort }}{{ end }}
{{- end }}

{{- define "pizza-shop.bootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers }}
{{- .Values.kafka.bootstrapServers }}
{{- else if .Values.strimzi.enabled }}
{{- $ns := "" }}
{{- if .Values.strimzi.kafkaNamespace }}{{ $ns = printf ".%s.svc" .Values.strimzi.kafkaNamespace }}{{ end }}
{{- printf "%s-kafka-bootstrap%s:%s" .Values.strimzi.clusterName $ns (include "pizza-shop.kafkaPort" .) }}
{{- else }}
{{- fail "kafka.bootstrapServers is required when strimzi.enabled is false" }}
{{- end }}
{{- end }}

{{- define "pizza-shop.securityProtocol" -}}
{{- $tls := include "pizza-shop.kafkaTls" . }}
{{- if eq .Values.kafka.auth.type "scram-sha-512" }}
{{- if $tls }}SASL_SSL{{ else }}SASL_PLAINTEXT{{ end }}
{{- else if $tls }}SSL{{ else }}PLAINTEXT{{ end }}
{{- end }}

{{- define "pizza-shop.caSecret" -}}
{{- .Values.kafka.tls.caSecret | default (printf "%s-cluster-ca-cert" .Values.strimzi.clusterName) }}
{{- end }}

{{/*
Ports of the Kafka brokers, as a YAML list: networkPolicy.kafkaPorts, else the
Strimzi listener ports, else the ports named in kafka.bootstrapServers.
*/}}
{{- define "pizza-shop.kafkaPorts" -}}
{{- $ports := .Values.networkPolicy.kafkaPorts }}
{{- if not $ports }}
{{- if .Values.strimzi.enabled }}
{{- $ports = list .Values.strimzi.listeners.plainPort .Values.strimzi.listeners.tlsPort }}
{{- else }}
{{- range $server := splitList "," (include "pizza-shop.bootstrapServers" .) }}
{{- $port := regexFind "[0-9]+$" (trim $server) }}
{{- if not $port }}
{{- fail (printf "kafka.bootstrapServers: %q has no port; write host:port (or set networkPolicy.kafkaPorts)" (trim $server)) }}
{{- end }}
{{- $ports = append $ports (int $port) }}
{{- end }}
{{- $ports = uniq $ports }}
{{- end }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/* The Kafka brokers as NetworkPolicy peers (YAML list): networkPolicy.kafkaTo, else the Strimzi cluster's pods; [] = anywhere. */}}
{{- define "pizza-shop.kafkaPeers" -}}
{{- $peers := .Values.networkPolicy.kafkaTo }}
{{- if and (not $peers) .Values.strimzi.enabled }}
{{- $peer := dict "podSelector" (dict "matchLabels" (dict "strimzi.io/cluster" .Values.strimzi.clusterName "strimzi.io/kind" "Kafka" "strimzi.io/name" (printf "%s-kafka" .Values.strimzi.clusterName))) }}
{{- if .Values.strimzi.kafkaNamespace }}
{{- $_ := set $peer "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .Values.strimzi.kafkaNamespace)) }}
{{- end }}
{{- $peers = list $peer }}
{{- end }}
{{- toYaml ($peers | default list) }}
{{- end }}

{{/* Kafka user (and the Secret Strimzi makes for it) of component .name. */}}
{{- define "pizza-shop.kafkaUser" -}}
{{- include "pizza-shop.componentName" . }}
{{- end }}

{{/* Checks that fail the render with a message naming the problem. */}}
{{- define "pizza-shop.validate" -}}
{{- $partitions := int .Values.topics.partitions }}
{{- range $name, $raw := .Values.components }}
{{- $c := include "pizza-shop.component" (dict "root" $ "name" $name) | fromYaml }}
{{- $k := $c.kafka | default dict }}
{{- if and $c.enabled $c.autoscaling.enabled }}
{{- if not (and $k.group $k.joinsGroup) }}
{{- fail (printf "components.%s.autoscaling: lag-based autoscaling needs a consumer group that it joins (kafka.group, kafka.joinsGroup); %s has none" $name $name) }}
{{- end }}
{{- if gt (int $c.autoscaling.maxReplicas) $partitions }}
{{- fail (printf "components.%s.autoscaling.maxReplicas (%d) is above topics.partitions (%d): replicas beyond the partition count would sit idle" $name (int $c.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) }}
{{- fail (printf "components.%s.autoscaling.minReplicas (%d) is above maxReplicas (%d)" $name (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and $c.enabled $k.group $k.joinsGroup (gt (int $c.replicas) $partitions) }}
{{- fail (printf "components.%s.replicas (%d) is above topics.partitions (%d): replicas beyond the partition count would sit idle" $name (int $c.replicas) $partitions) }}
{{- end }}
{{- if and $c.pdb.enabled (not (kindIs "invalid" $c.pdb.maxUnavailable)) (not (kindIs "invalid" $c.pdb.minAvailable)) }}
{{- fail (printf "components.%s.pdb: set only one of maxUnavailable and minAvailable" $name) }}
{{- end }}
{{- range $topic := concat ($k.consumes | default list) ($k.writes | default list) }}
{{- if not (hasKey $.Values.topics.items $topic) }}
{{- fail (printf "components.%s.kafka: topic %s is not in topics.items" $name $topic) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and .Values.strimzi.createCluster (not .Values.strimzi.enabled) }}
{{- fail "strimzi.createCluster needs strimzi.enabled" }}
{{- end }}
{{- if and (ne .Values.kafka.auth.type "none") (not .Values.strimzi.enabled) (not .Values.kafka.bootstrapServers) }}
{{- fail "kafka.bootstrapServers is required when strimzi.enabled is false" }}
{{- end }}
{{- end }}

{{/* The Secret holding the session signing key (SECRET_KEY in the front door's env names it). */}}
{{- define "pizza-shop.secretKeyName" -}}
{{- .Values.secretKey.existingSecret | default (printf "%s-secret-key" (include "pizza-shop.fullname" .)) }}
{{- end }}

{{/* The generated key, kept across upgrades: the existing Secret's value if there is one. */}}
{{- define "pizza-shop.secretKeyValue" -}}
{{- if not (hasKey .Values "_secretKeyValue") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "pizza-shop.secretKeyName" .) }}
{{- $value := "" }}
{{- if and $existing (index ($existing.data | default dict) .Values.secretKey.key) }}
{{- $value = index $existing.data .Values.secretKey.key | b64dec }}
{{- else }}
{{- $value = randAlphaNum 48 }}
{{- end }}
{{- $_ := set .Values "_secretKeyValue" $value }}
{{- end }}
{{- index .Values "_secretKeyValue" }}
{{- end }}
