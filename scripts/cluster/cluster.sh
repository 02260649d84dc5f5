#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for the chart's tests and for
# trying the shop out: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy (upstream binaries built by build.sh),
# containerd + runc with the bridge CNI plugin (Debian packages), CoreDNS, and a
# local OCI registry (CNCF Distribution) that containerd pulls every image from;
# then the operators of operators.sh (prometheus-operator + Prometheus, KEDA,
# kube-network-policies).
#
# Usage (as root):  bash scripts/cluster/cluster.sh up|down|status|env|node-images
#   up           start whatever is not running yet, then install the operators (re-runnable);
#                state in $PIZZA_CLUSTER_HOME/run
#   down         delete the pods through the kubelet, stop everything, remove the bridge,
#                every KUBE-* iptables chain and every mount under the state dir (re-runnable)
#   status       what runs
#   env          `eval "$(bash scripts/cluster/cluster.sh env)"`: KUBECONFIG and PATH
#   node-images  build pause and coredns FROM scratch and push them to the registry
# `make cluster` = install-system-deps + build.sh + up; `make cluster-down` = down.
# A fresh cluster: down, then `rm -rf $PIZZA_CLUSTER_HOME/run`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PAUSE_IMAGE="$REGISTRY/k8s/pause:3.10"
COREDNS_IMAGE="$REGISTRY/k8s/coredns:${COREDNS_VERSION#v}"
# How long the HPA controller waits before it scales a workload in, for HPAs that set no
# behavior of their own (such as KEDA's for the chart's ScaledObjects). The upstream
# default is 5 min; a local cluster that shows scaling in a couple of minutes uses 30 s.
HPA_DOWNSCALE_WINDOW="${HPA_DOWNSCALE_WINDOW:-30s}"
COMPONENTS=(etcd registry kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

pid_of() { local f="$RUN/$1.pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
running() { pid_of "$1" >/dev/null; }

start() { # NAME CMD...: run CMD in the background (own process group), log and pid under $RUN
    local name="$1"; shift
    running "$name" && return 0
    setsid "$@" >"$RUN/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/$name.pid"
}

write_config() { # FILE: stdin to FILE, only if it differs. kube-proxy exits when its
    # config file is written to, even with the same content (a second `up` must not kill it).
    local new; new="$(cat)"
    [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 0
    printf '%s\n' "$new" > "$1"
}

stop() { # NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local pid; pid="$(pid_of "$1")" || { rm -f "$RUN/$1.pid"; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$RUN/$1.pid"
}

check_prerequisites() {
    require_root "the cluster"
    local b missing=()
    for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy coredns registry; do
        [ -x "$BIN/$b" ] || missing+=("$b")
    done
    [ ${#missing[@]} -eq 0 ] || die "not built: ${missing[*]} (run: bash scripts/cluster/build.sh)"
    for b in etcd containerd runc kubectl openssl iptables podman; do
        command -v "$b" >/dev/null || die "$b is missing (run: bash scripts/install-system-deps.sh)"
    done
    [ -x /usr/lib/cni/bridge ] || die "CNI plugins missing (run: bash scripts/install-system-deps.sh)"
}

# --------------------------------------------------------------------------- PKI
pki() {
    [ -f "$PKI/admin.kubeconfig" ] && return 0
    mkdir -p "$PKI"
    local host; host="$(hostname)"
    (
        cd "$PKI"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=pizza-cluster-ca" 2>/dev/null
        cert() { # NAME CN [O] [SANS]: a client (or with SANS, serving and client) certificate
            openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
            if [ -n "${4:-}" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$4" > "$1.ext"
            else printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"; fi
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext" 2>/dev/null
            rm -f "$1.csr" "$1.ext"
        }
        cert apiserver kube-apiserver "" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP"
        cert admin kubernetes-admin system:masters
        cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
        cert controller-manager system:kube-controller-manager
        cert scheduler system:kube-scheduler
        cert kube-proxy system:kube-proxy
        cert kubelet "system:node:$host" system:nodes "DNS:$host,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"
        openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
        for user in admin controller-manager scheduler kube-proxy kubelet; do
            f="$user.kubeconfig"
            kubectl config --kubeconfig="$f" set-cluster pizza --server="https://127.0.0.1:$APISERVER_PORT" \
                --certificate-authority="$PKI/ca.crt" --embed-certs >/dev/null
            kubectl config --kubeconfig="$f" set-credentials "$user" --client-certificate="$PKI/$user.crt" \
                --client-key="$PKI/$user.key" --embed-certs >/dev/null
            kubectl config --kubeconfig="$f" set-context pizza --cluster=pizza --user="$user" >/dev/null
            kubectl config --kubeconfig="$f" use-context pizza >/dev/null
        done
    )
}

front_proxy_pki() {
    # The aggregation layer (KEDA's external metrics API): the apiserver proxies requests
    # to extension apiservers with this client certificate, and they trust the user in
    # its X-Remote-* headers because the certificate is signed by this CA.
    [ -f "$PKI/front-proxy-client.crt" ] && return 0
    (
        cd "$PKI"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout front-proxy-ca.key -out front-proxy-ca.crt -days 3650 \
            -subj "/CN=pizza-cluster-front-proxy-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout front-proxy-client.key -out front-proxy-client.csr \
            -subj "/CN=front-proxy-client" 2>/dev/null
        printf 'extendedKeyUsage=clientAuth\n' > front-proxy-client.ext
        openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial \
            -out front-proxy-client.crt -days 3650 -extfile front-proxy-client.ext 2>/dev/null
        rm -f front-proxy-client.csr front-proxy-client.ext
    )
}

# --------------------------------------------------------------------------- pieces
bridge_up() {
    # Made before the kubelet starts: the node IP must exist (the kubelet refuses a
    # loopback one); the CNI bridge plugin then adopts the bridge as the pods' gateway.
    ip link show "$BRIDGE" >/dev/null 2>&1 && return 0
    ip link add "$BRIDGE" type bridge
    ip addr add "$NODE_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
}

start_registry() {
    mkdir -p "$CLUSTER_HOME/registry"
    write_config "$RUN/registry.yaml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $CLUSTER_HOME/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY_LISTEN
YAML
    start registry "$BIN/registry" serve "$RUN/registry.yaml"
    wait_for 30 curl -sf "http://$REGISTRY/v2/" || die "registry did not start: $RUN/registry.log"
}

start_etcd() {
    start etcd etcd --name pizza --data-dir "$RUN/etcd" \
        --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
        --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
        --initial-cluster pizza=http://127.0.0.1:12380 --listen-metrics-urls http://127.0.0.1:12381
    wait_for 30 curl -sf http://127.0.0.1:12379/health || die "etcd did not start: $RUN/etcd.log"
}

start_control_plane() {
    # --advertise-address: the Service "kubernetes" may not point at loopback. Bound to
    # every address, so that pods (the operators) reach it through that Service.
    # The requestheader/proxy-client flags enable the aggregation layer (KEDA's adapter).
    start kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:12379 \
        --bind-address=0.0.0.0 --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
        --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
        --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
        --enable-aggregator-routing=true \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction --allow-privileged=true --profiling=false --v=1
    wait_for 120 kc get --raw /readyz || die "kube-apiserver not ready: $RUN/kube-apiserver.log"
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
        --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
        --horizontal-pod-autoscaler-sync-period=5s --horizontal-pod-autoscaler-downscale-stabilization="$HPA_DOWNSCALE_WINDOW" --v=1
    start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" \
        --authentication-kubeconfig="$PKI/scheduler.kubeconfig" --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --v=1
}

start_containerd() {
    mkdir -p "$RUN/containerd" "$RUN/cni/net.d" "$RUN/cni-ipam" "$RUN/containerd/certs.d/$REGISTRY"
    # containerd pulls from the local registry over plain HTTP, as kind users configure
    # theirs (hosts.toml per registry host).
    write_config "$RUN/containerd/certs.d/$REGISTRY/hosts.toml" <<TOML
server = "http://$REGISTRY_LISTEN"
[host."http://$REGISTRY_LISTEN"]
  capabilities = ["pull", "resolve"]
TOML
    write_config "$RUN/containerd.toml" <<TOML
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_unprivileged_ports = true
  # Without CAP_SYS_RESOURCE runc cannot set a negative oom_score_adj (the pause
  # container asks for -998): clamp it instead of failing every sandbox.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, so that down removes them.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$RUN/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni/net.d"
TOML
    write_config "$RUN/cni/net.d/10-pizza.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "pizza", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$RUN/cni-ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
JSON
    start containerd containerd --config "$RUN/containerd.toml"
    wait_for 30 ctr --address "$CONTAINERD_SOCK" version || die "containerd did not start: $RUN/containerd.log"
}

start_node() {
    local host; host="$(hostname)"
    mkdir -p "$RUN/kubelet" "$RUN/pod-logs"
    write_config "$RUN/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $PKI/ca.crt}}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# No systemd here; cgroup v1 is still allowed by 1.32.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: /etc/resolv.conf
podLogsDir: $RUN/pod-logs
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
maxPods: 60
YAML
    start_kubelet "$host"
    # masqueradeAll: a pod calling a ClusterIP backed by a pod on the same bridge would
    # otherwise get the reply straight from the backend's IP. conntrack sysctls are
    # left alone (maxPerCore 0), NodePorts only on the node IP.
    write_config "$RUN/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $host
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables: {masqueradeAll: true, localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
    start kube-proxy "$BIN/kube-proxy" --config="$RUN/kube-proxy.yaml" --v=1
    wait_for 30 curl -sf -o /dev/null http://127.0.0.1:10256/livez || die "kube-proxy not healthy: $RUN/kube-proxy.log"
    kc create clusterrolebinding pizza-cluster-kube-proxy --clusterrole=system:node-proxier \
        --user=system:kube-proxy >/dev/null 2>&1 || true
    wait_for 90 node_ready || die "node not Ready: $RUN/kubelet.log"
}

start_kubelet() { # HOST
    # The kubelet exits at once if containerd's CRI is still restoring the pods of a
    # previous run ("server is not initialized yet"), which ctr cannot see: start it
    # again until its own health endpoint answers.
    local attempt
    for attempt in 1 2 3 4 5; do
        start kubelet "$BIN/kubelet" --config="$RUN/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
            --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" --node-ip="$NODE_IP" \
            --hostname-override="$1" --v=1
        wait_for 30 kubelet_up_or_gone || true
        kubelet_healthy && return 0
        running kubelet && break
        log "kubelet exited (attempt $attempt): $(grep -m1 -o 'err=.*' "$RUN/kubelet.log" || true)"
        rm -f "$RUN/kubelet.pid"
        sleep 1
    done
    die "kubelet not healthy: $RUN/kubelet.log"
}

kubelet_healthy() { curl -sf -o /dev/null http://127.0.0.1:10248/healthz; }
kubelet_up_or_gone() { kubelet_healthy || ! running kubelet; }

node_ready() {
    # The Ready condition in etcd may be the previous run's: the live kubelet must answer too.
    kubelet_healthy || return 1
    kc get node "$(hostname)" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

start_dns() {
    sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@DNS_IP@|$DNS_IP|g" \
        -e "s|@APISERVER_PORT@|$APISERVER_PORT|g" "$CLUSTER_LIB_DIR/coredns.yaml" | kc apply -f - >/dev/null
    # A Ready pod, not the Deployment's status: after a restart that status is the old one.
    wait_for 120 dns_ready || die "CoreDNS not ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
}

dns_ready() {
    kc -n kube-system get pods -l k8s-app=kube-dns \
        -o jsonpath='{.items[*].status.conditions[?(@.type=="Ready")].status}' | grep -q True
}

# --------------------------------------------------------------------------- images
node_images() {
    # pause (the sandbox image) and CoreDNS, built FROM scratch: no registry outside this machine.
    local work; work="$(mktemp -d)"
    mkdir -p "$work/pause" "$work/coredns"
    cp "$CLUSTER_LIB_DIR/pause.go" "$work/pause/main.go"
    printf 'module pause\ngo 1.22\n' > "$work/pause/go.mod"
    (cd "$work/pause" && CGO_ENABLED=0 go build -ldflags '-s -w' -o pause .)
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$work/pause/Containerfile"
    cp "$BIN/coredns" "$work/coredns/"
    printf 'FROM scratch\nCOPY coredns /coredns\nENTRYPOINT ["/coredns"]\n' > "$work/coredns/Containerfile"
    podman build -q -t "$PAUSE_IMAGE" "$work/pause" >/dev/null
    podman build -q -t "$COREDNS_IMAGE" "$work/coredns" >/dev/null
    push_image "$PAUSE_IMAGE"
    push_image "$COREDNS_IMAGE"
    rm -rf "$work"
}

push_image() { podman push -q --tls-verify=false "$1" >/dev/null; }

# --------------------------------------------------------------------------- commands
up() {
    check_prerequisites
    local started t; started="$(now_ms)"
    mkdir -p "$RUN"
    pki
    front_proxy_pki
    bridge_up
    t="$(now_ms)"; start_registry
    if ! registry_has "$PAUSE_IMAGE" || ! registry_has "$COREDNS_IMAGE"; then node_images; fi
    log "registry on $REGISTRY ($(since "$t"))"
    t="$(now_ms)"; start_etcd; start_control_plane; log "control plane ready ($(since "$t"))"
    t="$(now_ms)"; start_containerd; start_node; log "node $(hostname) Ready ($(since "$t"))"
    t="$(now_ms)"; start_dns; log "CoreDNS ready ($(since "$t"))"
    bash "$CLUSTER_LIB_DIR/operators.sh" install
    log "cluster up in $(since "$started"): eval \"\$(bash scripts/cluster/cluster.sh env)\""
}

down() {
    require_root "cluster down"
    local t; t="$(now_ms)"
    # Pods first, through the kubelet, so that CNI DEL frees their IPs and veths; the
    # controller-manager goes first so that nothing is recreated meanwhile.
    stop kube-controller-manager
    if running kubelet && kc get --raw /readyz >/dev/null 2>&1; then
        kc delete pods --all -A --grace-period=2 --wait=false >/dev/null 2>&1 || true
        wait_for 60 sh -c "[ -z \"\$(ctr --address $CONTAINERD_SOCK -n k8s.io tasks ls -q 2>/dev/null)\" ]" || true
    fi
    local name
    for name in kube-proxy kubelet kube-scheduler kube-apiserver; do stop "$name"; done
    if running containerd; then
        for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
    fi
    for name in containerd etcd registry; do stop "$name"; done
    # Every KUBE-* chain, IPv4 and IPv6: kube-proxy's and the kubelet's (KUBE-FIREWALL,
    # KUBE-MARK-MASQ, canaries); `kube-proxy --cleanup` leaves some of them behind.
    local ipt table rule chain
    for ipt in iptables ip6tables; do
        command -v "$ipt" >/dev/null || continue
        for table in filter nat mangle; do
            $ipt -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' | sed 's/^-A //' \
                | while read -r rule; do eval "$ipt -t $table -D $rule" 2>/dev/null || true; done || true
            for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t "$table" -F "$chain"; done
            for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t "$table" -X "$chain"; done
        done
    done
    # kube-network-policies deletes its nftables table when it stops; should it have been
    # killed instead, its queue rules (no bypass) would drop pod traffic on the next up.
    if command -v nft >/dev/null; then nft delete table inet kube-network-policies 2>/dev/null || true; fi
    ip link del "$BRIDGE" 2>/dev/null || true
    # The kubelet's bind mount of its root dir, volume mounts, pod netns: deepest first.
    awk -v r="$RUN/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    find "$RUN/containerd/state" -path '*/netns/cni-*' -delete 2>/dev/null || true
    find /var/log/containers /var/log/pods -maxdepth 1 -lname "$RUN/*" -delete 2>/dev/null || true
    log "stopped in $(since "$t") (state kept in $RUN; rm -rf it for a fresh cluster)"
}

status() {
    local name
    for name in "${COMPONENTS[@]}"; do
        if running "$name"; then printf '%-24s running (pid %s)\n' "$name" "$(pid_of "$name")"
        else printf '%-24s stopped\n' "$name"; fi
    done
    running kube-apiserver && kc get nodes -o wide 2>/dev/null || true
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    node-images) require_root "node-images"; node_images ;;
    env) printf 'export KUBECONFIG=%q PATH=%q:"$PATH"\n' "$KUBECONFIG_FILE" "$BIN" ;;
    *) sed -n '2,/^source/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
esac
