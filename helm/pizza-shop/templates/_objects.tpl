{{- /*
The objects of one component; components.yaml includes each of them for every
enabled component, with the context (dict "root" $ "name" <component> "c"
<its settings> "env" <its env>). Each decides from the settings alone whether
the component gets it: nothing here names a component.
*/ -}}

{{- define "pizza-shop.metadata" -}}
metadata:
  name: {{ include "pizza-shop.componentName" . }}
  labels:
    {{- include "pizza-shop.componentLabels" . | nindent 4 }}
{{- end }}

{{- define "pizza-shop.serviceAccount" -}}
{{- if .root.Values.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
{{ include "pizza-shop.metadata" . }}
  {{- with .root.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: false
{{- end }}
{{- end }}

{{- define "pizza-shop.configMap" -}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "pizza-shop.componentName" . }}-env
  labels:
    {{- include "pizza-shop.componentLabels" . | nindent 4 }}
data:
  {{- toYaml .env.config | nindent 2 }}
{{- end }}

{{- define "pizza-shop.deployment" -}}
---
apiVersion: apps/v1
kind: Deployment
{{ include "pizza-shop.metadata" . }}
spec:
  {{- if not .c.autoscaling.enabled }}
  replicas: {{ .c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "pizza-shop.componentSelectorLabels" . | nindent 6 }}
  template:
    {{- include "pizza-shop.podTemplate" . | trim | nindent 4 }}
{{- end }}

{{/* A Service for a component with ports: http on service.port, every other port on its own number. */}}
{{- define "pizza-shop.service" -}}
{{- $c := .c }}
{{- if $c.ports }}
---
apiVersion: v1
kind: Service
{{ include "pizza-shop.metadata" . }}
  {{- with $c.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $c.service.type }}
  selector:
    {{- include "pizza-shop.componentSelectorLabels" . | nindent 4 }}
  ports:
    {{- with $c.ports.http }}
    - name: http
      port: {{ $c.service.port }}
      targetPort: http
      protocol: TCP
      {{- if and (has $c.service.type (list "NodePort" "LoadBalancer")) $c.service.nodePort }}
      nodePort: {{ $c.service.nodePort }}
      {{- end }}
    {{- end }}
    {{- range $port, $number := omit $c.ports "http" }}
    - name: {{ $port }}
      port: {{ $number }}
      targetPort: {{ $port }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}

{{- define "pizza-shop.podDisruptionBudget" -}}
{{- if .c.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
{{ include "pizza-shop.metadata" . }}
spec:
  {{- if not (kindIs "invalid" .c.pdb.minAvailable) }}
  minAvailable: {{ .c.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .c.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "pizza-shop.componentSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
Pod selectors of the clients of port .port of component .c: the enabled
components (and "test", the helm test pod) listed in c.clients.<port>.
*/}}
{{- define "pizza-shop.clientPeers" -}}
{{- $peers := list }}
{{- range $client := get (.c.clients | default dict) .port | default list }}
{{- $known := get $.root.Values.components $client }}
{{- if or (not $known) $known.enabled }}
{{- $selector := include "pizza-shop.componentSelectorLabels" (dict "root" $.root "name" $client) | fromYaml }}
{{- $peers = append $peers (dict "podSelector" (dict "matchLabels" $selector)) }}
{{- end }}
{{- end }}
{{- toYaml $peers }}
{{- end }}

{{/*
Ingress, per port of the component:
  http: from networkPolicy.webappFrom for a public component (the shop's front
    door), else from networkPolicy.metricsFrom (the scrapers), each [] = from
    anywhere; plus the clients of http (and the scrapers for a public one)
  every other port: only from the clients listed in c.clients.<port>; none = closed
Egress: DNS; the Kafka brokers for a component that uses Kafka; and every port
of another component whose clients include this one.
Kubelet probes come from the node and are not subject to these policies.
*/}}
{{- define "pizza-shop.networkPolicy" -}}
{{- $root := .root }}
{{- $np := $root.Values.networkPolicy }}
{{- if $np.enabled }}
{{- $c := .c }}
{{- $rules := list }}
{{- if hasKey ($c.ports | default dict) "http" }}
{{- $rule := dict "ports" (list (dict "port" "http" "protocol" "TCP")) }}
{{- $public := eq $c.public true }}
{{- $first := ternary $np.webappFrom $np.metricsFrom $public }}
{{- if $first }}
{{- $clients := include "pizza-shop.clientPeers" (dict "root" $root "c" $c "port" "http") | fromYamlArray }}
{{- $_ := set $rule "from" (concat $first $clients (ternary $np.metricsFrom (list) $public)) }}
{{- end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- range $port, $number := omit ($c.ports | default dict) "http" }}
{{- $clients := include "pizza-shop.clientPeers" (dict "root" $root "c" $c "port" $port) | fromYamlArray }}
{{- if $clients }}
{{- $rules = append $rules (dict "ports" (list (dict "port" $port "protocol" "TCP")) "from" $clients) }}
{{- end }}
{{- end }}
{{- $egress := list }}
{{- $dnsPorts := list }}
{{- range $port := $np.dns.ports }}
{{- $dnsPorts = append $dnsPorts (dict "port" $port "protocol" "UDP") }}
{{- $dnsPorts = append $dnsPorts (dict "port" $port "protocol" "TCP") }}
{{- end }}
{{- $dns := dict "ports" $dnsPorts }}
{{- with $np.dns.to }}{{ $_ := set $dns "to" . }}{{ end }}
{{- $egress = append $egress $dns }}
{{- if $c.kafka }}
{{- $kafkaPorts := list }}
{{- range $port := include "pizza-shop.kafkaPorts" $root | fromYamlArray }}
{{- $kafkaPorts = append $kafkaPorts (dict "port" $port "protocol" "TCP") }}
{{- end }}
{{- $kafka := dict "ports" $kafkaPorts }}
{{- with include "pizza-shop.kafkaPeers" $root | fromYamlArray }}{{ $_ := set $kafka "to" . }}{{ end }}
{{- $egress = append $egress $kafka }}
{{- end }}
{{- range $server := include "pizza-shop.enabledComponents" $root | fromYamlArray }}
{{- $s := include "pizza-shop.component" (dict "root" $root "name" $server) | fromYaml }}
{{- range $port, $number := $s.ports }}
{{- if has $.name (get ($s.clients | default dict) $port | default list) }}
{{- $selector := include "pizza-shop.componentSelectorLabels" (dict "root" $root "name" $server) | fromYaml }}
{{- $egress = append $egress (dict "ports" (list (dict "port" $port "protocol" "TCP")) "to" (list (dict "podSelector" (dict "matchLabels" $selector)))) }}
{{- end }}
{{- end }}
{{- end }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
{{ include "pizza-shop.metadata" . }}
spec:
  podSelector:
    matchLabels:
      {{- include "pizza-shop.componentSelectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- toYaml $rules | nindent 4 }}
  egress:
    {{- toYaml (concat $egress $np.extraEgress) | nindent 4 }}
{{- end }}
{{- end }}

{{/*
KafkaUser with exactly the ACLs the component's code declares (c.kafka
mirrors KAFKA_USAGE; tests/chart compares them): Read+Describe on consumed
topics, Write+Describe on written topics, Read on its consumer group,
Write+Describe on its transactional ids (prefix).
*/}}
{{- define "pizza-shop.kafkaUserResource" -}}
{{- $v := .root.Values }}
{{- if and .c.kafka $v.strimzi.enabled $v.strimzi.createUsers (ne $v.kafka.auth.type "none") }}
{{- $k := .c.kafka }}
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaUser
metadata:
  name: {{ include "pizza-shop.kafkaUser" . }}
  labels:
    strimzi.io/cluster: {{ $v.strimzi.clusterName }}
    {{- include "pizza-shop.componentLabels" . | nindent 4 }}
spec:
  authentication:
    type: {{ $v.kafka.auth.type }}
  authorization:
    type: simple
    acls:
      {{- range $topic := $k.consumes }}
      - resource:
          type: topic
          name: {{ $topic }}
          patternType: literal
        operations: [Read, Describe]
      {{- end }}
      {{- range $topic := $k.writes }}
      - resource:
          type: topic
          name: {{ $topic }}
          patternType: literal
        operations: [Write, Describe]
      {{- end }}
      {{- with $k.group }}
      - resource:
          type: group
          name: {{ . }}
          patternType: literal
        operations: [Read]
      {{- end }}
      {{- with $k.transactionalIdPrefix }}
      - resource:
          type: transactionalId
          name: {{ . }}
          patternType: prefix
        operations: [Write, Describe]
      {{- end }}
{{- end }}
{{- end }}

{{/*
KEDA ScaledObject for a component with autoscaling.enabled and a consumer
group it joins: one kafka trigger per consumed topic (KEDA scales on the
largest). maxReplicaCount is capped at topics.partitions (pizza-shop.validate).
With Kafka auth on, a TriggerAuthentication reads the component's own credentials.
*/}}
{{- define "pizza-shop.scaledObject" -}}
{{- $root := .root }}
{{- $c := .c }}
{{- $k := $c.kafka | default dict }}
{{- if and $c.autoscaling.enabled $k.group $k.joinsGroup }}
{{- $auth := $root.Values.kafka.auth.type }}
{{- $tls := include "pizza-shop.kafkaTls" $root }}
{{- $user := include "pizza-shop.kafkaUser" . }}
{{- $needsAuth := or (ne $auth "none") $tls }}
{{- if $needsAuth }}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
{{ include "pizza-shop.metadata" . }}
spec:
  {{- if eq $auth "scram-sha-512" }}
  env:
    - parameter: username
      name: KAFKA_SASL_USERNAME
      containerName: {{ .name }}
  {{- end }}
  secretTargetRef:
    {{- if eq $auth "scram-sha-512" }}
    - parameter: password
      name: {{ $user }}
      key: password
    {{- end }}
    {{- if $tls }}
    - parameter: ca
      name: {{ include "pizza-shop.caSecret" $root }}
      key: {{ $root.Values.kafka.tls.caKey }}
    {{- end }}
    {{- if eq $auth "tls" }}
    - parameter: cert
      name: {{ $user }}
      key: user.crt
    - parameter: key
      name: {{ $user }}
      key: user.key
    {{- end }}
{{- end }}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
{{ include "pizza-shop.metadata" . }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "pizza-shop.componentName" . }}
  minReplicaCount: {{ $c.autoscaling.minReplicas }}
  maxReplicaCount: {{ $c.autoscaling.maxReplicas }}
  pollingInterval: {{ $c.autoscaling.pollingInterval }}
  cooldownPeriod: {{ $c.autoscaling.cooldownPeriod }}
  triggers:
    {{- range $topic := $k.consumes }}
    - type: kafka
      {{- if $needsAuth }}
      authenticationRef:
        name: {{ include "pizza-shop.componentName" $ }}
      {{- end }}
      metadata:
        bootstrapServers: {{ include "pizza-shop.bootstrapServers" $root | quote }}
        consumerGroup: {{ $k.group | quote }}
        topic: {{ $topic | quote }}
        lagThreshold: {{ $c.autoscaling.lagThreshold | quote }}
        activationLagThreshold: {{ $c.autoscaling.activationLagThreshold | quote }}
        offsetResetPolicy: earliest
        allowIdleConsumers: "false"
        {{- if eq $auth "scram-sha-512" }}
        sasl: scram_sha512
        {{- end }}
        {{- if $tls }}
        tls: enable
        {{- end }}
    {{- end }}
{{- end }}
{{- end }}
