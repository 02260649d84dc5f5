#!/usr/bin/env bash
# Build the cluster's binaries from the Go module proxy into $PIZZA_CLUSTER_HOME/bin.
#
# Only what is missing (or pinned at another version) is built, so a warm cache
# costs nothing. Builds run niced: they take ~15 min on two cores when the Go
# build cache is cold, ~3 min when only the binaries were deleted.
#
# Usage: bash scripts/cluster/build.sh [kubernetes|coredns|registry|skaffold]...
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

command -v go >/dev/null || die "no Go toolchain: run scripts/install-system-deps.sh"
mkdir -p "$BIN"
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(kubernetes coredns registry skaffold)
started="$(now_ms)"
for target in "${targets[@]}"; do
    case "$target" in
        kubernetes|coredns|registry|skaffold) "build_$target" ;;
        *) die "unknown build target: $target" ;;
    esac
done
log "binaries ready in $(since "$started") ($BIN)"
