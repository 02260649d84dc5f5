#!/usr/bin/env bash
# The operators that act on what the chart declares besides its workloads, run on
# the local cluster from images built here (no registry outside this machine):
#   prometheus-operator  reconciles the chart's ServiceMonitor/PodMonitor and
#                        PrometheusRule into the Prometheus of k8s/local/prometheus.yaml
#                        (Prometheus built from its Go module: see build.sh)
#   KEDA                 operator + metrics apiserver (external metrics through the
#                        aggregation layer): reconciles the chart's ScaledObjects
#   kube-network-policies  enforces NetworkPolicies (nftables + nfqueue; see build.sh
#                        for the queue target it is built with, and kernel_can_enforce)
# Binaries, CRDs and upstream manifests come from build.sh (build.sh operators);
# images are FROM scratch with the static binary.
#
# Usage (as root):  bash scripts/cluster/operators.sh [images|install]
#   images   build the operators' images into podman's store (build.sh does; cached there)
#   install  push the images the registry lacks, then CRDs, operators, Prometheus; wait
#            until all are ready (default; cluster.sh up runs it)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MANIFESTS="$CLUSTER_HOME/manifests"
# NAME:TAG of each image; NAME is also the binary's name in $BIN.
OPERATOR_IMAGES=(prometheus-operator:"$PROMETHEUS_OPERATOR_VERSION"
    prometheus-config-reloader:"$PROMETHEUS_OPERATOR_VERSION"
    keda-operator:"$KEDA_VERSION" keda-adapter:"$KEDA_VERSION"
    kube-network-policies:"$KUBE_NETWORK_POLICIES_VERSION"
    prometheus:"$PROMETHEUS_VERSION")
# Where the reason is written when NetworkPolicies cannot be enforced here (the tests read it).
NETPOL_UNSUPPORTED="$RUN/kube-network-policies.unsupported"

local_image() { echo "localhost/pizza-cluster/$1"; } # NAME:TAG in podman's store
image_of() { echo "$REGISTRY/operators/$1"; }         # NAME:TAG in the cluster's registry

build_images() {
    local t entry name version image work user; t="$(now_ms)"
    for entry in "${OPERATOR_IMAGES[@]}"; do
        name="${entry%%:*}" version="${entry#*:}" image="$(local_image "$entry")"
        podman image exists "$image" && continue
        [ "$(cat "$BIN/$name.version" 2>/dev/null)" = "$version" ] \
            || die "$name $version is not built (run: bash scripts/cluster/build.sh operators)"
        work="$(mktemp -d)"
        cp "$BIN/$name" "$work/"
        # A static Go binary needs nothing else; a numeric user satisfies runAsNonRoot, except
        # for kube-network-policies, which programs the node's nftables (root, privileged).
        # In /bin: prometheus-operator runs its config reloader as /bin/prometheus-config-reloader.
        user=65532:65532; [ "$name" != kube-network-policies ] || user=0:0
        printf 'FROM scratch\nCOPY %s /bin/%s\nUSER %s\nENTRYPOINT ["/bin/%s"]\n' \
            "$name" "$name" "$user" "$name" > "$work/Containerfile"
        podman build -q -t "$image" "$work" >/dev/null
        rm -rf "$work"
        log "image $image built"
    done
    log "operator images ready ($(since "$t"))"
}

push_images() { # the images the registry does not have yet
    local entry
    for entry in "${OPERATOR_IMAGES[@]}"; do
        registry_has "$(image_of "$entry")" && continue
        podman image exists "$(local_image "$entry")" || build_images
        podman tag "$(local_image "$entry")" "$(image_of "$entry")"
        podman push -q --tls-verify=false "$(image_of "$entry")" >/dev/null
        log "pushed $(image_of "$entry")"
    done
}

kernel_can_enforce() {
    # kube-network-policies (built with the xtables NFQUEUE target, see build.sh) needs
    # nftables' compat layer, that target and the nfnetlink queue. Where the kernel's
    # config is readable, check them; a kernel without them would only crash-loop it.
    local option config missing=()
    [ -r /proc/config.gz ] || return 0
    config="$(zcat /proc/config.gz)"
    for option in CONFIG_NF_TABLES CONFIG_NFT_COMPAT CONFIG_NETFILTER_XT_TARGET_NFQUEUE CONFIG_NETFILTER_NETLINK_QUEUE; do
        grep -qE "^$option=(y|m)$" <<< "$config" || missing+=("$option")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "kernel $(uname -r) is built without ${missing[*]}: kube-network-policies cannot queue packets"
    return 1
}

install() {
    local t started reason; started="$(now_ms)"
    export KUBECONFIG="$KUBECONFIG_FILE"
    for f in prometheus-operator-crds prometheus-operator keda-crds keda kube-network-policies; do
        [ -s "$MANIFESTS/$f.yaml" ] || die "$MANIFESTS/$f.yaml missing (run: bash scripts/cluster/build.sh operators)"
    done
    push_images
    t="$(now_ms)"
    # Server-side: some of these CRDs are too large for the last-applied annotation.
    kubectl apply --server-side --force-conflicts \
        -f "$MANIFESTS/prometheus-operator-crds.yaml" -f "$MANIFESTS/keda-crds.yaml" >/dev/null
    kubectl wait --for=condition=Established --timeout=60s \
        -f "$MANIFESTS/prometheus-operator-crds.yaml" -f "$MANIFESTS/keda-crds.yaml" >/dev/null
    log "operator CRDs Established ($(since "$t"))"

    t="$(now_ms)"
    kubectl apply -f "$REPO_ROOT/k8s/local/monitoring-namespace.yaml" >/dev/null
    # The upstream manifests, pointed at the local images (and the monitoring namespace).
    sed -e "s|namespace: default|namespace: monitoring|" \
        -e "s|image: quay.io/prometheus-operator/prometheus-operator:.*|image: $(image_of "prometheus-operator:$PROMETHEUS_OPERATOR_VERSION")|" \
        -e "s|--prometheus-config-reloader=.*|--prometheus-config-reloader=$(image_of "prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION")|" \
        "$MANIFESTS/prometheus-operator.yaml" | kubectl apply -n monitoring -f - >/dev/null
    sed -e "s|image: ghcr.io/kedacore/keda:.*|image: $(image_of "keda-operator:$KEDA_VERSION")|" \
        -e "s|image: ghcr.io/kedacore/keda-metrics-apiserver:.*|image: $(image_of "keda-adapter:$KEDA_VERSION")|" \
        -e "s|- /keda$|- /bin/keda-operator|" -e "s|- /keda-adapter$|- /bin/keda-adapter|" \
        -e "s|imagePullPolicy: Always|imagePullPolicy: IfNotPresent|" \
        "$MANIFESTS/keda.yaml" | kubectl apply -f - >/dev/null
    if reason="$(kernel_can_enforce)"; then
        rm -f "$NETPOL_UNSUPPORTED"
        # The upstream image runs its args as the command (/bin/netpol): ours has the binary
        # as entrypoint. containerd 1.6 has no NRI to ask for pod IPs: the apiserver is asked,
        # and the netns mount NRI needs may not propagate (the host's / is a private mount).
        sed -e "s|image: registry.k8s.io/networking/kube-network-policies:.*|image: $(image_of "kube-network-policies:$KUBE_NETWORK_POLICIES_VERSION")|" \
            -e "s|- /bin/netpol$|- --disable-nri|" -e "/mountPropagation: HostToContainer/d" \
            "$MANIFESTS/kube-network-policies.yaml" | kubectl apply -f - >/dev/null
    else
        echo "$reason" > "$NETPOL_UNSUPPORTED"
        log "NetworkPolicies are not enforced: $reason"
    fi
    sed -e "s|@PROMETHEUS_IMAGE@|$(image_of "prometheus:$PROMETHEUS_VERSION")|" \
        -e "s|@PROMETHEUS_VERSION@|v2.${PROMETHEUS_VERSION#v0.}|" \
        "$REPO_ROOT/k8s/local/prometheus.yaml" | kubectl apply -f - >/dev/null

    kubectl -n monitoring rollout status deployment/prometheus-operator --timeout=180s >/dev/null \
        || die "prometheus-operator not ready: kubectl -n monitoring logs deploy/prometheus-operator"
    kubectl -n keda rollout status deployment/keda-operator --timeout=240s >/dev/null \
        || die "keda-operator not ready: kubectl -n keda logs deploy/keda-operator"
    kubectl -n keda rollout status deployment/keda-metrics-apiserver --timeout=240s >/dev/null \
        || die "keda-metrics-apiserver not ready: kubectl -n keda logs deploy/keda-metrics-apiserver"
    wait_for 180 condition_true apiservice v1beta1.external.metrics.k8s.io Available \
        || die "external metrics API not Available: kubectl get apiservice v1beta1.external.metrics.k8s.io -o yaml"
    wait_for 240 condition_true -n monitoring prometheus pizza Available \
        || die "Prometheus not available: kubectl -n monitoring describe prometheus pizza"
    if [ ! -f "$NETPOL_UNSUPPORTED" ]; then
        kubectl -n kube-system rollout status daemonset/kube-network-policies --timeout=120s >/dev/null \
            || die "kube-network-policies not ready: kubectl -n kube-system logs ds/kube-network-policies"
    fi
    log "operators ready ($(since "$t")); total $(since "$started")"
}

condition_true() { # [kubectl get args...] CONDITION: the object's condition is True
    local condition="${*: -1}"
    kubectl get "${@:1:$#-1}" -o jsonpath="{.status.conditions[?(@.type==\"$condition\")].status}" | grep -qx True
}

case "${1:-install}" in
    images) build_images ;;
    install) install ;;
    *) sed -n '2,/^source/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
esac
