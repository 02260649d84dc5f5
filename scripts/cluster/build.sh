#!/usr/bin/env bash
# Build the cluster's binaries from the Go module proxy into $PIZZA_CLUSTER_HOME/bin.
#
# Only what is missing (or pinned at another version) is built, so a warm cache
# costs nothing. Builds run niced: they take ~15 min on two cores when the Go
# build cache is cold, ~3 min when only the binaries were deleted.
#
# Usage: bash scripts/cluster/build.sh [kubernetes|coredns|registry|skaffold|operators]...
#   operators = prometheus-operator, prometheus, keda and kube-network-policies (also
#               targets one by one), and their images
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$CLUSTER_HOME/src"
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

have() { # NAME VERSION: the cached binary exists and was built at VERSION
    [ -x "$BIN/$1" ] && [ "$(cat "$BIN/$1.version" 2>/dev/null)" = "$2" ]
}
stamp() { echo "$2" > "$BIN/$1.version"; }

module_dir() { # MODULE@VERSION: download it, print its directory in the module cache
    go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

copy_module() { # MODULE@VERSION NAME: a writable copy to build in (for modules with replace directives)
    local dir; dir="$(module_dir "$1")"
    rm -rf "${SRC:?}/$2" && mkdir -p "$SRC" && cp -r "$dir" "$SRC/$2" && chmod -R u+w "$SRC/$2"
    echo "$SRC/$2"
}

build_kubernetes() {
    local missing=() b
    for b in "${K8S_BINARIES[@]}"; do have "$b" "v$K8S_VERSION" || missing+=("$b"); done
    [ ${#missing[@]} -gt 0 ] || { log "kubernetes v$K8S_VERSION: cached"; return 0; }
    local t; t="$(now_ms)"
    # k8s.io/kubernetes is not meant to be consumed as a module: its go.mod points
    # the k8s.io/* staging modules at ./staging, which module zips do not contain.
    # Build from a copy whose replaces point at the published staging modules
    # (v0.<minor>.<patch>, or the newest v0.<minor>.* the proxy serves).
    local dir minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
    dir="$(copy_module "k8s.io/kubernetes@v$K8S_VERSION" kubernetes)"
    cd "$dir" && rm -rf go.work go.work.sum vendor
    local m v
    for m in $(sed -n 's#^\t\(k8s.io/[a-z-]*\) => ./staging/.*#\1#p' go.mod); do
        v="v0.${K8S_VERSION#1.}"
        if ! go mod download "$m@$v" >/dev/null 2>&1; then
            v="$(go list -m -versions "$m" 2>/dev/null | tr ' ' '\n' | grep "^v0\.$minor\." | sort -V | tail -1 || true)"
        fi
        if [ -n "$v" ]; then
            sed -i "s#^\t$m => ./staging/src/$m\$#\t$m => $m $v#" go.mod
        else # only the sample modules, which no binary imports
            sed -i "\#^\t$m => ./staging/#d" go.mod
        fi
    done
    GOFLAGS=-mod=mod go mod download
    local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION
        -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor
        -X k8s.io/component-base/version.gitTreeState=clean"
    for b in "${missing[@]}"; do
        local tb; tb="$(now_ms)"
        CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 10 go build -ldflags "$ldflags" -o "$BIN/$b" "./cmd/$b"
        stamp "$b" "v$K8S_VERSION"
        log "built $b v$K8S_VERSION in $(since "$tb")"
    done
    cd "$REPO_ROOT" && rm -rf "${SRC:?}/kubernetes"
    log "kubernetes v$K8S_VERSION built in $(since "$t")"
}

build_coredns() {
    have coredns "$COREDNS_VERSION" && { log "coredns $COREDNS_VERSION: cached"; return 0; }
    local t; t="$(now_ms)"
    CGO_ENABLED=0 GOBIN="$BIN" nice -n 10 go install -ldflags '-s -w' "github.com/coredns/coredns@$COREDNS_VERSION"
    stamp coredns "$COREDNS_VERSION"; log "built coredns $COREDNS_VERSION in $(since "$t")"
}

build_registry() {
    have registry "$REGISTRY_VERSION" && { log "registry $REGISTRY_VERSION: cached"; return 0; }
    local t; t="$(now_ms)"
    CGO_ENABLED=0 GOBIN="$BIN" nice -n 10 go install -ldflags '-s -w' \
        "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
    stamp registry "$REGISTRY_VERSION"; log "built registry $REGISTRY_VERSION in $(since "$t")"
}

build_skaffold() {
    have skaffold "$SKAFFOLD_VERSION" && { log "skaffold $SKAFFOLD_VERSION: cached"; return 0; }
    local t dir; t="$(now_ms)"
    # `go install` of skaffold is refused (the proxy denies its version list, which
    # go install reads for deprecation notices): build from a copy instead.
    dir="$(copy_module "github.com/GoogleContainerTools/skaffold/v2@$SKAFFOLD_VERSION" skaffold)"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 go build \
        -ldflags "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION" \
        -o "$BIN/skaffold" ./cmd/skaffold)
    rm -rf "${SRC:?}/skaffold"
    stamp skaffold "$SKAFFOLD_VERSION"; log "built skaffold $SKAFFOLD_VERSION in $(since "$t")"
}

# --- the operators (prometheus-operator, KEDA, kube-network-policies) ---------
# Static binaries (CGO off) for the FROM-scratch images operators.sh builds. Their
# CRDs and upstream install manifests are taken from the same module versions into
# $CLUSTER_HOME/manifests, so binary, schema and RBAC always match; operators.sh
# only points the manifests at the local images.
MANIFESTS="$CLUSTER_HOME/manifests"
GO_BUILD=(env CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false" nice -n 10 go build)

build_prometheus_operator() {
    local v="$PROMETHEUS_OPERATOR_VERSION"
    have prometheus-operator "$v" && have prometheus-config-reloader "$v" \
        && [ -s "$MANIFESTS/prometheus-operator.yaml" ] && { log "prometheus-operator $v: cached"; return 0; }
    local t dir m ldflags; t="$(now_ms)"
    # Its go.mod replaces two nested modules with ./pkg/..., which the module zip
    # does not contain: point them at the published modules of the same version.
    m=github.com/prometheus-operator/prometheus-operator
    dir="$(copy_module "$m@$v" prometheus-operator)"
    ldflags="-s -w -X github.com/prometheus/common/version.Version=${v#v}"
    (cd "$dir" && go mod edit \
        -dropreplace "$m/pkg/apis/monitoring" -dropreplace "$m/pkg/client" \
        -require "$m/pkg/apis/monitoring@$v" -require "$m/pkg/client@$v" \
        && "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$dir/out/" ./cmd/operator ./cmd/prometheus-config-reloader \
        && mv "$dir/out/operator" "$BIN/prometheus-operator" \
        && mv "$dir/out/prometheus-config-reloader" "$BIN/prometheus-config-reloader")
    mkdir -p "$MANIFESTS"
    # One CRD per file, then the operator's RBAC, Deployment and Service, then the RBAC
    # of the Prometheus it runs (the example's Prometheus and ServiceMonitor are not taken).
    local r="$dir/example/rbac"
    for f in "$dir"/example/prometheus-operator-crd/*.yaml; do echo "---"; cat "$f"; done > "$MANIFESTS/prometheus-operator-crds.yaml"
    for f in "$r"/prometheus-operator/prometheus-operator-{service-account,cluster-role,cluster-role-binding,deployment,service}.yaml \
        "$r"/prometheus/prometheus-{service-account,cluster-role,cluster-role-binding}.yaml; do
        echo "---"; cat "$f"
    done > "$MANIFESTS/prometheus-operator.yaml"
    rm -rf "${SRC:?}/prometheus-operator"
    stamp prometheus-operator "$v"; stamp prometheus-config-reloader "$v"
    log "built prometheus-operator $v in $(since "$t")"
}

build_keda() {
    local v="$KEDA_VERSION"
    have keda-operator "$v" && have keda-adapter "$v" && [ -s "$MANIFESTS/keda.yaml" ] \
        && { log "keda $v: cached"; return 0; }
    local t dir ldflags d; t="$(now_ms)"
    # Replace directives (all to published versions) rule out `go install`.
    dir="$(copy_module "github.com/kedacore/keda/v2@$v" keda)"
    ldflags="-s -w -X github.com/kedacore/keda/v2/version.Version=$v"
    (cd "$dir" && "${GO_BUILD[@]}" -ldflags "$ldflags" -o "$dir/out/" ./cmd/operator ./cmd/adapter \
        && mv "$dir/out/operator" "$BIN/keda-operator" && mv "$dir/out/adapter" "$BIN/keda-adapter")
    mkdir -p "$MANIFESTS"
    # KEDA's own kustomize bases: CRDs, namespace, RBAC, operator, metrics apiserver
    # (+ its APIService). Not its admission webhooks, a third image the cluster does not need.
    kubectl kustomize "$dir/config/crd" > "$MANIFESTS/keda-crds.yaml"
    for d in general service_account rbac manager metrics-server; do
        echo "---"; kubectl kustomize "$dir/config/$d"
    done > "$MANIFESTS/keda.yaml"
    rm -rf "${SRC:?}/keda"
    stamp keda-operator "$v"; stamp keda-adapter "$v"; log "built keda $v in $(since "$t")"
}

build_kube_network_policies() {
    local v="$KUBE_NETWORK_POLICIES_VERSION"
    have kube-network-policies "$v+xtqueue" && [ -s "$MANIFESTS/kube-network-policies.yaml" ] \
        && { log "kube-network-policies $v: cached"; return 0; }
    local t dir pkg; t="$(now_ms)"
    dir="$(copy_module "sigs.k8s.io/kube-network-policies@$v" kube-network-policies)"
    # It hands packets to its userspace verdict loop with nftables' "queue" expression
    # (nft_queue). Kernels built without CONFIG_NFT_QUEUE, such as this project's CI
    # VMs', refuse that expression (ENOENT) and no policy can be programmed. The
    # xtables NFQUEUE target, used from nftables through nft_compat (what iptables-nft
    # does), queues to the same nfnetlink queue: build with that instead. Same
    # queue number and bypass flag, same verdicts.
    pkg="$dir/pkg/networkpolicy"
    cat > "$pkg/xt_queue.go" <<'GO'
package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// xtQueue is the xtables NFQUEUE target, revision 3 (struct xt_NFQ_info_v3: queue
// number, number of queues, flags; host byte order, padded to 8 bytes), through nft_compat.
func xtQueue(num uint16, bypass bool) expr.Any {
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 1) // NFQ_FLAG_BYPASS
	}
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
GO
    perl -0pi -e 's/queue := &expr\.Queue\{Num: uint16\(c\.config\.QueueID\)\}\n\tif c\.config\.FailOpen \{\n\t\tqueue\.Flag = expr\.QueueFlagBypass\n\t\}/queue := xtQueue(uint16(c.config.QueueID), c.config.FailOpen)/g' "$pkg/controller.go"
    perl -0pi -e 's/&expr\.Queue\{Num: uint16\(n\.nfQueueID\), Flag: expr\.QueueFlagBypass\}/xtQueue(uint16(n.nfQueueID), true)/g' "$pkg/dnsagent.go"
    ! grep -rn 'expr\.Queue{' "$pkg" --include='*.go' | grep -v _test.go \
        || die "kube-network-policies $v: a queue expression left unpatched (see above)"
    (cd "$dir" && "${GO_BUILD[@]}" -ldflags '-s -w' -o "$BIN/kube-network-policies" ./cmd)
    mkdir -p "$MANIFESTS"
    cp "$dir/install.yaml" "$MANIFESTS/kube-network-policies.yaml"
    rm -rf "${SRC:?}/kube-network-policies"
    stamp kube-network-policies "$v+xtqueue"; log "built kube-network-policies $v in $(since "$t")"
}

build_prometheus() {
    local v="$PROMETHEUS_VERSION"
    have prometheus "$v" && { log "prometheus $v: cached"; return 0; }
    local t dir; t="$(now_ms)"
    # Debian's prometheus package is built without Kubernetes service discovery
    # ("field kubernetes_sd_configs not found in type config.ScrapeConfig" on the config
    # prometheus-operator writes), so the cluster's Prometheus is built from its module.
    # Its go.mod has replace directives: a copy-out build. Module v0.X.Y is Prometheus 2.X.Y.
    dir="$(copy_module "github.com/prometheus/prometheus@$v" prometheus)"
    (cd "$dir" && "${GO_BUILD[@]}" -ldflags "-s -w -X github.com/prometheus/common/version.Version=2.${v#v0.}" \
        -o "$BIN/prometheus" ./cmd/prometheus)
    rm -rf "${SRC:?}/prometheus"
    stamp prometheus "$v"; log "built prometheus $v in $(since "$t")"
}

build_operators() {
    build_kube_network_policies; build_prometheus_operator; build_prometheus; build_keda
    # Their images too (podman, FROM scratch), while no cluster runs yet.
    bash "$CLUSTER_LIB_DIR/operators.sh" images
}

command -v go >/dev/null || die "no Go toolchain: run scripts/install-system-deps.sh"
mkdir -p "$BIN"
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kubernetes coredns registry skaffold operators)
started="$(now_ms)"
for target in "${targets[@]}"; do
    case "$target" in
        kubernetes|coredns|registry|skaffold|operators) "build_$target" ;;
        prometheus-operator|prometheus|keda|kube-network-policies) "build_${target//-/_}" ;;
        *) die "unknown build target: $target" ;;
    esac
done
log "binaries ready in $(since "$started") ($BIN)"
