"""A kubelet stand-in: runs the pods that `helm template` renders under podman, as a kubelet would.

No Kubernetes cluster runs here, but containers do. This module reads the
rendered objects (Deployments, the helm test Pod, and the Secrets, ConfigMaps
and Services they refer to) and runs every container with the settings its pod
spec gives, so that what `helm install` would start is started for real:

    pod spec                                  podman run
    ----------------------------------------  ------------------------------------------------
    image, imagePullPolicy Never/IfNotPresent  image, --pull=never / --pull=missing (Always: no registry, fails)
    command / args                             --entrypoint <command as JSON> / trailing args;
                                               unset: the image's entrypoint / cmd; $(VAR) expanded
    env value, valueFrom secretKeyRef,         -e NAME=VALUE, resolved from the rendered Secrets and
    configMapKeyRef, fieldRef (metadata.name,  ConfigMaps (envFrom first, env wins, as in Kubernetes)
    metadata.namespace), envFrom
    securityContext runAsUser/runAsGroup       --user UID:GID (container settings over the pod's)
    runAsNonRoot                               checked: the user must not be 0
    readOnlyRootFilesystem true                --read-only --read-only-tmpfs=false
    allowPrivilegeEscalation false             --security-opt no-new-privileges
    capabilities drop [ALL] / add              --cap-drop=all / --cap-add
    seccompProfile RuntimeDefault              podman's default seccomp profile (the runtime default)
    pod securityContext fsGroup                --group-add <fsGroup> (kubelet adds it to the process)
    emptyDir (sizeLimit, medium)               tmpfs at each mountPath, size=sizeLimit, mode 0777
    configMap / secret volume                  files written to a private folder, bind-mounted read-only
    resources limits memory / cpu              --memory / --cpus
    resources requests cpu                     --cpu-shares (millicores * 1024 / 1000, as kubelet)
    startupProbe, livenessProbe,               probed from here, on the spec's schedule (see Prober)
    readinessProbe (httpGet)
    terminationGracePeriodSeconds              podman stop -t <grace>: SIGTERM, SIGKILL after the grace
    activeDeadlineSeconds (Pod)                the Pod's run is killed after it

Networking: every container runs with --network=host, so the five pods share
the host's ports. ONE rule makes them fit: each Deployment gets a free host
port P; its containerPort (8080) becomes P by overriding the container's
HTTP_PORT env (the stand-in first checks that the rendered HTTP_PORT equals the
containerPort, so the remap is faithful), probes on that port go to
127.0.0.1:P, and the Deployment's Service (<release>-<component>:<port>, also
with .<namespace>[.svc[.cluster.local]]) is 127.0.0.1:P: every env value and
argument that names a rendered Service's host:port is rewritten to it (the
webapp's STATUS_URL, the helm test's WEBAPP_URL). A replacement pod of the same
Deployment gets the same P, as a Service keeps its address. Everything else is
taken literally. One pod per Deployment: the test renders replicas 1 (a Service
with one endpoint) and a Deployment with more replicas is refused.

Anything in a pod spec that the stand-in does not know is an error
(UnsupportedSpec), so a chart change cannot silently bypass it. Fields that
only place a pod on a node (affinity, tolerations, topology spread, priority,
the service account name) have no meaning on one host and are accepted as such.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
PODMAN = ["bash", str(REPO / "scripts/images/podman.sh")]
# podman's defaults copy the host's limits, which may be huge; the images are tested with these.
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
CONTAINER_LABEL = "io.pizza-shop.pods-test"


class UnsupportedSpec(AssertionError):
    """The pod spec has a field or value this stand-in cannot run faithfully."""


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {shlex.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


# --- the rendered release --------------------------------------------------------------------------

def _known(obj: dict, where: str, understood: set[str], placement: frozenset[str] = frozenset()) -> None:
    unknown = set(obj) - understood - placement
    if unknown:
        raise UnsupportedSpec(f"{where}: the pod stand-in does not understand {sorted(unknown)}")


class Release:
    """The objects of one `helm template` output, by kind and name."""

    def __init__(self, docs: list[dict], namespace: str):
        self.docs = docs
        self.namespace = namespace

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        if len(found) != 1:
            raise UnsupportedSpec(f"{kind} {name} is referred to but the chart renders {len(found)} of them")
        return found[0]

    def config_map(self, name: str) -> dict[str, str]:
        obj = self.get("ConfigMap", name)
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}

    def secret(self, name: str) -> dict[str, str]:
        obj = self.get("Secret", name)
        data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
        return data

    def service_of(self, deployment: dict) -> dict:
        """The Service whose selector picks this Deployment's pods."""
        labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        found = [s for s in self.of_kind("Service")
                 if s["spec"].get("selector") and s["spec"]["selector"].items() <= labels.items()]
        if len(found) != 1:
            raise UnsupportedSpec(f"Deployment {deployment['metadata']['name']}: {len(found)} Services select it")
        return found[0]


# --- env, command, volumes --------------------------------------------------------------------------

_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ is a literal $, others stay."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, value)


def resolve_env(container: dict, release: Release, pod_name: str, where: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        _known(source, f"{where}.envFrom", {"configMapRef", "secretRef", "prefix"})
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            _known(ref, f"{where}.envFrom.configMapRef", {"name", "optional"})
            data = release.config_map(ref["name"])
        else:
            ref = source["secretRef"]
            _known(ref, f"{where}.envFrom.secretRef", {"name", "optional"})
            data = release.secret(ref["name"])
        env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        _known(var, f"{where}.env", {"name", "value", "valueFrom"})
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        _known(source, f"{where}.env[{name}].valueFrom", {"secretKeyRef", "configMapKeyRef", "fieldRef"})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            _known(ref, f"{where}.env[{name}].secretKeyRef", {"name", "key", "optional"})
            data = release.secret(ref["name"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            _known(ref, f"{where}.env[{name}].configMapKeyRef", {"name", "key", "optional"})
            data = release.config_map(ref["name"])
        else:
            ref = source["fieldRef"]
            _known(ref, f"{where}.env[{name}].fieldRef", {"fieldPath", "apiVersion"})
            data = {"metadata.name": pod_name, "metadata.namespace": release.namespace}
            ref = {"key": ref["fieldPath"]}
        if ref["key"] not in data:
            raise UnsupportedSpec(f"{where}.env[{name}]: key {ref['key']!r} is not in the referred object")
        env[name] = data[ref["key"]]
    return env


def _quantity_bytes(q: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        raise UnsupportedSpec(f"quantity {q!r}")
    scale = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _quantity_cpu(q) -> float:
    s = str(q)
    return int(s[:-1]) / 1000 if s.endswith("m") else float(s)


@dataclass
class Probe:
    kind: str   # startup | liveness | readiness
    path: str
    port: int   # host port
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int

    @property
    def startup_bound(self) -> float:
        """The longest a startup probe may take before kubelet gives up on the container."""
        return self.initial_delay + self.period * self.failure_threshold


def _probe(spec: dict, kind: str, ports: dict, where: str) -> Probe:
    _known(spec, where, {"httpGet", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                         "failureThreshold", "successThreshold", "terminationGracePeriodSeconds"})
    if "httpGet" not in spec:
        raise UnsupportedSpec(f"{where}: only httpGet probes are supported")
    if "terminationGracePeriodSeconds" in spec:
        raise UnsupportedSpec(f"{where}: a probe-level terminationGracePeriodSeconds")
    get = spec["httpGet"]
    _known(get, f"{where}.httpGet", {"path", "port", "scheme"})
    if get.get("scheme", "HTTP") != "HTTP":
        raise UnsupportedSpec(f"{where}: scheme {get['scheme']}")
    port = get["port"]
    if port not in ports:
        raise UnsupportedSpec(f"{where}: port {port!r} is not a declared containerPort")
    success = int(spec.get("successThreshold", 1))
    if kind != "readiness" and success != 1:
        raise UnsupportedSpec(f"{where}: successThreshold must be 1 for {kind} probes (API validation)")
    return Probe(kind, get.get("path", "/"), ports[port], float(spec.get("initialDelaySeconds", 0)),
                 float(spec.get("periodSeconds", 10)), float(spec.get("timeoutSeconds", 1)),
                 int(spec.get("failureThreshold", 3)), success)


POD_FIELDS = {"containers", "volumes", "securityContext", "terminationGracePeriodSeconds",
              "automountServiceAccountToken", "enableServiceLinks", "restartPolicy", "activeDeadlineSeconds"}
# Scheduling and identity on a cluster: nothing to do on a single host.
POD_PLACEMENT = frozenset({"serviceAccountName", "nodeSelector", "tolerations", "affinity",
                           "topologySpreadConstraints", "priorityClassName", "imagePullSecrets"})
CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "command", "args", "env", "envFrom", "ports",
                    "startupProbe", "livenessProbe", "readinessProbe", "resources", "securityContext",
                    "volumeMounts", "workingDir", "terminationMessagePolicy", "terminationMessagePath"}
SECURITY_FIELDS = {"runAsNonRoot", "runAsUser", "runAsGroup", "readOnlyRootFilesystem",
                   "allowPrivilegeEscalation", "capabilities", "seccompProfile", "privileged"}
POD_SECURITY_FIELDS = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}


@dataclass
class ContainerSpec:
    """One container of one pod, translated to a podman command line."""

    pod_name: str
    name: str
    argv: list[str]             # podman run arguments without the name
    env: dict[str, str]
    host_port: int | None
    probes: dict[str, Probe]
    grace: float
    memory_limit: int | None
    active_deadline: float | None


def container_specs(kind: str, obj: dict, release: Release, host_ports: dict[str, int],
                    workdir: Path) -> list[ContainerSpec]:
    """podman command lines for every container of a Deployment's pod template or of a Pod.

    host_ports: Service name -> host port (the rendered Services' pods, see the module docstring).
    """
    meta_name = obj["metadata"]["name"]
    if kind == "Deployment":
        _known(obj["spec"], f"Deployment/{meta_name}.spec",
               {"replicas", "selector", "template", "revisionHistoryLimit", "strategy", "minReadySeconds"})
        if obj["spec"].get("replicas", 1) != 1:
            raise UnsupportedSpec(f"Deployment/{meta_name}: replicas {obj['spec']['replicas']}; "
                                  "the stand-in runs one pod per Deployment (render with replicas 1)")
        spec = obj["spec"]["template"]["spec"]
        pod_name = f"{meta_name}-{uuid.uuid4().hex[:10]}"
        service = release.service_of(obj)
        own_port = host_ports[service["metadata"]["name"]]
    elif kind == "Pod":
        spec = obj["spec"]
        pod_name = meta_name
        own_port = None
    else:
        raise UnsupportedSpec(f"{kind}/{meta_name}: not a pod")
    where = f"{kind}/{meta_name}"
    _known(spec, f"{where}.spec", POD_FIELDS, POD_PLACEMENT)
    if spec.get("automountServiceAccountToken", True) is not False:
        raise UnsupportedSpec(f"{where}: a service account token would be mounted (no API server here)")
    if spec.get("enableServiceLinks", True) is not False:
        raise UnsupportedSpec(f"{where}: enableServiceLinks would inject <SERVICE>_* variables")
    restart = spec.get("restartPolicy", "Always")
    if (kind == "Deployment") != (restart == "Always"):
        raise UnsupportedSpec(f"{where}: restartPolicy {restart}")
    pod_sc = spec.get("securityContext") or {}
    _known(pod_sc, f"{where}.securityContext", POD_SECURITY_FIELDS)
    if len(spec["containers"]) != 1 and own_port is not None:
        raise UnsupportedSpec(f"{where}: one container per pod (its port is the pod's port)")

    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for v in volumes.values():
        _known(v, f"{where}.volumes[{v['name']}]", {"name", "emptyDir", "configMap", "secret"})

    services = {s["metadata"]["name"]: s["spec"]["ports"] for s in release.of_kind("Service")}
    ns = re.escape(release.namespace)

    def rewrite(value: str) -> str:
        for svc, ports in services.items():
            for p in ports:
                pattern = rf"\b{re.escape(svc)}(\.{ns}(\.svc(\.cluster\.local)?)?)?:{p['port']}\b"
                value = re.sub(pattern, f"127.0.0.1:{host_ports[svc]}", value)
        return value

    out = []
    for c in spec["containers"]:
        cw = f"{where}.containers[{c['name']}]"
        _known(c, cw, CONTAINER_FIELDS)
        argv = ["--network=host", *ULIMITS, "--label", f"{CONTAINER_LABEL}=1",
                "--stop-signal", "SIGTERM", "--hostname", pod_name[:63]]
        policy = c.get("imagePullPolicy", "IfNotPresent")
        if policy == "Never":
            argv.append("--pull=never")
        elif policy == "IfNotPresent":
            argv.append("--pull=missing")
        else:
            raise UnsupportedSpec(f"{cw}: imagePullPolicy {policy} (no registry here)")

        # Ports: one named or numbered port, remapped to the Deployment's host port via HTTP_PORT.
        env = resolve_env(c, release, pod_name, cw)
        ports: dict = {}
        for p in c.get("ports") or []:
            _known(p, f"{cw}.ports", {"name", "containerPort", "protocol"})
            if p.get("protocol", "TCP") != "TCP":
                raise UnsupportedSpec(f"{cw}: port protocol {p['protocol']}")
            if own_port is None or len(c["ports"]) != 1:
                raise UnsupportedSpec(f"{cw}: ports need exactly one per Deployment pod")
            if env.get("HTTP_PORT") != str(p["containerPort"]):
                raise UnsupportedSpec(f"{cw}: HTTP_PORT={env.get('HTTP_PORT')!r} is not the containerPort "
                                      f"{p['containerPort']}: the service would not listen where probes go")
            ports[p["containerPort"]] = own_port
            if "name" in p:
                ports[p["name"]] = own_port
        if ports:
            env["HTTP_PORT"] = str(own_port)
        env = {k: rewrite(v) for k, v in env.items()}
        for k, v in env.items():
            argv += ["-e", f"{k}={v}"]

        # Security context: the container's settings over the pod's.
        sc = c.get("securityContext") or {}
        _known(sc, f"{cw}.securityContext", SECURITY_FIELDS)
        merged = {**{k: v for k, v in pod_sc.items() if k != "fsGroup"}, **sc}
        if merged.get("privileged"):
            raise UnsupportedSpec(f"{cw}: privileged")
        if "runAsUser" in merged:
            user = str(merged["runAsUser"])
            if "runAsGroup" in merged:
                user += f":{merged['runAsGroup']}"
            argv += ["--user", user]
        if merged.get("runAsNonRoot") and int(merged.get("runAsUser", -1)) in (0, -1):
            raise UnsupportedSpec(f"{cw}: runAsNonRoot without a numeric non-zero runAsUser")
        if "fsGroup" in pod_sc:
            argv += ["--group-add", str(pod_sc["fsGroup"])]
        if merged.get("readOnlyRootFilesystem"):
            argv += ["--read-only", "--read-only-tmpfs=false"]
        if merged.get("allowPrivilegeEscalation") is False:
            argv += ["--security-opt", "no-new-privileges"]
        caps = merged.get("capabilities") or {}
        _known(caps, f"{cw}.securityContext.capabilities", {"drop", "add"})
        for cap in caps.get("drop") or []:
            argv.append(f"--cap-drop={cap.lower()}")
        for cap in caps.get("add") or []:
            argv.append(f"--cap-add={cap.lower()}")
        seccomp = merged.get("seccompProfile") or {"type": "RuntimeDefault"}
        if seccomp != {"type": "RuntimeDefault"}:
            raise UnsupportedSpec(f"{cw}: seccompProfile {seccomp}")

        # Resources.
        res = c.get("resources") or {}
        _known(res, f"{cw}.resources", {"limits", "requests"})
        memory_limit = None
        for part, values in res.items():
            _known(values, f"{cw}.resources.{part}", {"cpu", "memory"})
        limits, requests_ = res.get("limits") or {}, res.get("requests") or {}
        if "memory" in limits:
            memory_limit = _quantity_bytes(limits["memory"])
            argv += ["--memory", str(memory_limit), "--memory-swap", str(memory_limit)]
        if "cpu" in limits:
            argv += ["--cpus", str(min(_quantity_cpu(limits["cpu"]), os.cpu_count() or 1))]
        if "cpu" in requests_:
            argv += ["--cpu-shares", str(max(2, int(_quantity_cpu(requests_["cpu"]) * 1024)))]
        # requests.memory: kubelet schedules on it, it sets no cgroup limit (cgroup v1); nothing to do.

        # Volumes.
        for m in c.get("volumeMounts") or []:
            _known(m, f"{cw}.volumeMounts", {"name", "mountPath", "readOnly"})
            vol = volumes.get(m["name"])
            if vol is None:
                raise UnsupportedSpec(f"{cw}: volumeMount {m['name']} has no volume")
            target, ro = m["mountPath"], bool(m.get("readOnly"))
            if "emptyDir" in vol:
                ed = vol["emptyDir"] or {}
                _known(ed, f"{where}.volumes[{m['name']}].emptyDir", {"sizeLimit", "medium"})
                if ed.get("medium", "") not in ("", "Memory"):
                    raise UnsupportedSpec(f"{where}: emptyDir medium {ed['medium']}")
                opts = f"type=tmpfs,destination={target},tmpfs-mode=0777"
                if "sizeLimit" in ed:
                    opts += f",tmpfs-size={_quantity_bytes(ed['sizeLimit'])}"
                if ro:
                    opts += ",ro=true"
                argv += ["--mount", opts]
            else:
                source_kind = "configMap" if "configMap" in vol else "secret"
                src = vol[source_kind]
                _known(src, f"{where}.volumes[{m['name']}].{source_kind}",
                       {"name", "secretName", "items", "defaultMode", "optional"})
                data = (release.config_map(src["name"]) if source_kind == "configMap"
                        else release.secret(src["secretName"]))
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                folder = Path(tempfile.mkdtemp(prefix=f"{m['name']}-", dir=workdir))
                for item in items:
                    _known(item, f"{where}.volumes[{m['name']}].items", {"key", "path", "mode"})
                    dest = folder / item["path"]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_text(data[item["key"]])
                    dest.chmod(item.get("mode", src.get("defaultMode", 0o644)))
                folder.chmod(0o755)
                argv += ["-v", f"{folder}:{target}:ro" if ro else f"{folder}:{target}"]
        if c.get("workingDir"):
            argv += ["--workdir", c["workingDir"]]

        # Probes.
        probes = {}
        for kind_, key in (("startup", "startupProbe"), ("liveness", "livenessProbe"), ("readiness", "readinessProbe")):
            if key in c:
                probes[kind_] = _probe(c[key], kind_, ports, f"{cw}.{key}")

        # Command: command replaces the entrypoint, args the cmd; $(VAR) from the container's env.
        tail = []
        if "command" in c:
            command = [rewrite(expand(a, env)) for a in c["command"]]
            argv += ["--entrypoint", json.dumps(command)]
        if "args" in c:
            tail = [rewrite(expand(a, env)) for a in c["args"]]
        elif "command" in c:
            tail = []
        argv += [c["image"], *tail]
        out.append(ContainerSpec(pod_name, c["name"], argv, env, own_port, probes,
                                 float(spec.get("terminationGracePeriodSeconds", 30)), memory_limit,
                                 spec.get("activeDeadlineSeconds")))
    return out


# --- a running container -------------------------------------------------------------------------

def http_ok(url: str, timeout: float) -> tuple[bool, str]:
    """A kubelet HTTP probe: success is a status in [200, 400) within the timeout."""
    try:
        code = requests.get(url, timeout=timeout, allow_redirects=False).status_code
    except requests.RequestException as exc:
        return False, type(exc).__name__
    return 200 <= code < 400, str(code)


@dataclass
class ProbeState:
    started_at: float | None = None          # seconds after container start
    ready_at: float | None = None
    ready: bool = False
    liveness_failures: int = 0               # consecutive
    readiness_results: list = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    history: list[tuple[float, str, bool, str]] = field(default_factory=list)


class Container:
    """A container started from a ContainerSpec, with its probes run as kubelet runs them."""

    def __init__(self, spec: ContainerSpec):
        self.spec = spec
        self.name = f"pods-{spec.pod_name}-{spec.name}"[:120]
        self.state = ProbeState()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.start_time = 0.0
        self._cgroup: str | None = None

    def start(self) -> Container:
        podman("run", "-d", "--name", self.name, *self.spec.argv)
        self.start_time = time.monotonic()
        if self.spec.probes:
            self._thread = threading.Thread(target=self._probe_loop, name=f"probes-{self.name}", daemon=True)
            self._thread.start()
        return self

    # -- probes ---------------------------------------------------------------------------------
    def _record(self, probe: Probe, ok: bool, detail: str) -> None:
        t = time.monotonic() - self.start_time
        self.state.history.append((round(t, 2), probe.kind, ok, detail))

    def _probe_loop(self) -> None:
        """startup first (liveness and readiness wait for it), then liveness and readiness, each on its period."""
        probes = self.spec.probes
        st = self.state
        due = {"startup": probes["startup"].initial_delay} if "startup" in probes else {}
        successes = {"startup": 0, "readiness": 0}
        failures = {"startup": 0, "readiness": 0, "liveness": 0}

        def begin_after_startup(now_rel: float) -> None:
            for k in ("liveness", "readiness"):
                if k in probes:
                    due[k] = max(now_rel, probes[k].initial_delay)

        if "startup" not in probes:
            st.started_at = 0.0
            begin_after_startup(0.0)
        while not self._stop.is_set():
            if not due:
                return
            kind = min(due, key=due.get)
            wait = self.start_time + due[kind] - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            probe = probes[kind]
            began = time.monotonic() - self.start_time
            ok, detail = http_ok(f"http://127.0.0.1:{probe.port}{probe.path}", probe.timeout)
            if self._stop.is_set():
                return
            self._record(probe, ok, detail)
            with self._changed:
                if kind == "startup":
                    if ok:
                        st.started_at = time.monotonic() - self.start_time
                        del due["startup"]
                        begin_after_startup(began + 0.0)
                    else:
                        failures["startup"] += 1
                        if failures["startup"] >= probe.failure_threshold:
                            st.violations.append(f"startup probe failed {probe.failure_threshold} times: "
                                                 "kubelet would kill and restart the container")
                            del due["startup"]
                elif kind == "readiness":
                    if ok:
                        failures["readiness"] = 0
                        successes["readiness"] += 1
                        if not st.ready and successes["readiness"] >= probe.success_threshold:
                            st.ready = True
                            if st.ready_at is None:
                                st.ready_at = time.monotonic() - self.start_time
                    else:
                        successes["readiness"] = 0
                        failures["readiness"] += 1
                        if st.ready and failures["readiness"] >= probe.failure_threshold:
                            st.ready = False
                    st.readiness_results.append(ok)
                else:
                    if ok:
                        failures["liveness"] = 0
                    else:
                        failures["liveness"] += 1
                        if failures["liveness"] >= probe.failure_threshold:
                            st.violations.append(f"liveness probe failed {probe.failure_threshold} times in a row "
                                                 f"at {began:.1f}s: kubelet would restart the container")
                            failures["liveness"] = 0
                if kind in due:
                    due[kind] = began + probe.period
                self._changed.notify_all()

    def wait_for(self, what: str, condition, bound: float) -> float:
        """Waits until condition(state) (notified by the probe loop); fails after `bound` seconds from start."""
        deadline = self.start_time + bound
        with self._changed:
            while not condition(self.state):
                if self.state.violations:
                    raise AssertionError(f"{self.name}: {self.state.violations}\n{self.log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: {what} not within {bound:.0f} s of the container's start "
                                         f"(what the pod spec allows)\nprobes: {self.state.history[-10:]}\n"
                                         f"{self.log_tail()}")
                self._changed.wait(min(remaining, 1.0))
                if not self.running():
                    raise AssertionError(f"{self.name}: exited while waiting for {what}\n{self.log_tail()}")
        return time.monotonic() - self.start_time

    def wait_started(self) -> float:
        probe = self.spec.probes["startup"]
        self.wait_for("the startup probe", lambda s: s.started_at is not None, probe.startup_bound)
        return self.state.started_at

    def wait_ready(self, bound: float) -> float:
        self.wait_for("readiness", lambda s: s.ready, bound)
        return self.state.ready_at

    def stop_probing(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- lifecycle -------------------------------------------------------------------------------
    def running(self) -> bool:
        r = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return r.stdout.strip() == "true"

    def inspect(self) -> dict:
        return json.loads(podman("inspect", self.name).stdout)[0]

    def stop(self) -> tuple[float, int]:
        """kubelet's stop: SIGTERM, SIGKILL after terminationGracePeriodSeconds. Returns (seconds, exit code)."""
        self.stop_probing()
        began = time.monotonic()
        podman("stop", "-t", str(int(self.spec.grace)), self.name, timeout=self.spec.grace + 60)
        took = time.monotonic() - began
        return took, int(self.inspect()["State"]["ExitCode"])

    def kill(self) -> None:
        self.stop_probing()
        podman("kill", "-s", "KILL", self.name)
        podman("wait", self.name, timeout=60, check=False)

    def remove(self) -> None:
        self.stop_probing()
        podman("rm", "--force", "--time", "0", self.name, check=False)

    def logs(self) -> str:
        r = podman("logs", self.name, check=False)
        return r.stdout + r.stderr

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.logs().splitlines()[-n:])

    def json_logs(self) -> list[dict]:
        out = []
        for line in self.logs().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def memory_working_set(self) -> int:
        """Bytes, as kubelet/`kubectl top` count them: usage minus inactive file cache (cgroup v1 or v2)."""
        if self._cgroup is None:
            self._cgroup = self.inspect()["State"].get("CgroupPath") or ""
        path = self._cgroup
        v1 = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
        v2 = Path("/sys/fs/cgroup") / path.lstrip("/")
        if (v1 / "memory.usage_in_bytes").is_file():
            usage = int((v1 / "memory.usage_in_bytes").read_text())
            stat = dict(line.split() for line in (v1 / "memory.stat").read_text().splitlines())
            return usage - int(stat.get("total_inactive_file", 0))
        if (v2 / "memory.current").is_file():
            usage = int((v2 / "memory.current").read_text())
            stat = dict(line.split() for line in (v2 / "memory.stat").read_text().splitlines())
            return usage - int(stat.get("inactive_file", 0))
        stats = json.loads(podman("stats", "--no-stream", "--format", "json", self.name).stdout)[0]
        return _human_bytes(stats["mem_usage"].split("/")[0])


def _human_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([kKMGT]?i?B)\s*", text)
    if not m:
        raise AssertionError(f"podman stats memory {text!r}")
    unit = m.group(2)
    scale = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    return int(float(m.group(1)) * scale[unit])


# --- the node ---------------------------------------------------------------------------------

class Kubelet:
    """Runs the rendered release's pods on this host; remembers every container it started."""

    def __init__(self, release: Release, workdir: Path, free_port):
        self.release = release
        self.workdir = workdir
        # One host port per Service (= per Deployment, one pod each): the module docstring's rule.
        self.host_ports = {s["metadata"]["name"]: free_port() for s in release.of_kind("Service")}
        self.containers: list[Container] = []

    def deployments(self) -> list[dict]:
        return self.release.of_kind("Deployment")

    def port_of(self, deployment: str) -> int:
        return self.host_ports[self.release.service_of(self.release.get("Deployment", deployment))["metadata"]["name"]]

    def start(self, kind: str, name: str) -> Container:
        (spec,) = container_specs(kind, self.release.get(kind, name), self.release, self.host_ports, self.workdir)
        container = Container(spec)
        self.containers.append(container)
        return container.start()

    def cleanup(self) -> None:
        for c in self.containers:
            c.remove()
