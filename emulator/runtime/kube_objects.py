"""The Kubernetes objects that run one ``ContainerSpec``: pure functions, no cluster needed.

One container of the platform is one Pod:

* ``smemu-stage`` (init container, the helper image) waits until the backend has streamed the
  staged folders into the pod's emptyDir volumes through the exec API and touched
  ``/smemu/ctl/staged``. Nothing is read from this machine's filesystem by the cluster, so the
  same pods work on a cluster whose nodes share nothing with the emulator.
* ``main`` runs the user's image with the spec's command, environment, limits and GPUs; each
  staged folder is mounted at its target (read-only where asked).
* ``smemu-collect`` (the helper image) sleeps beside it with every folder mounted under
  ``/smemu/root`` at the same paths as in ``main``, so folders can be copied out while ``main``
  runs (checkpoints) and after it has exited (model, output). The pod shares one process
  namespace, so the collector can also send ``main`` SIGTERM and SIGKILL (``stop``/``kill``)
  without ending the pod.

A network of peers is a headless Service selecting its pods by the ``smemu.network`` label;
each pod sets ``hostname`` (``algo-1``) and ``subdomain`` (the Service), and the Service's
domain is added to the pod's DNS search path, so ``algo-2`` resolves from ``algo-1`` as on a
Docker network. Network isolation is a NetworkPolicy.

Label values must be short DNS-like words in Kubernetes; ours (endpoint names, variant names)
usually are, and any that is not is replaced by a hash. The exact labels travel in an
annotation, which is what :func:`labels_of` reads back.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from emulator.runtime.spec import ContainerSpec, RuntimeError_

MAIN = "main"
STAGER = "smemu-stage"
COLLECTOR = "smemu-collect"
CONTROL_DIR = "/smemu/ctl"
ROOT_DIR = "/smemu/root"
"""Where the helper containers see the main container's folders (same paths below it)."""
STAGED_MARKER = f"{CONTROL_DIR}/staged"
NETWORK_LABEL = "smemu.network"
POD_LABEL = "smemu.pod"
LABELS_ANNOTATION = "smemu.labels"
NAME_ANNOTATION = "smemu.name"
PORTS_ANNOTATION = "smemu.ports"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sagemaker-emulator"}
HELPER_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "256Mi"}}

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def dns_label(text: str, *, letter_first: bool = False, limit: int = 63) -> str:
    """``text`` as a DNS label (lowercase letters, digits, '-'; at most ``limit``); a hash keeps it unique."""
    word = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if letter_first and not word[:1].isalpha():
        word = f"s-{word}".rstrip("-")
    if word == text and len(word) <= limit:
        return word
    suffix = _digest(text)
    return f"{word[: limit - len(suffix) - 1].rstrip('-')}-{suffix}".lstrip("-")


def pod_name(container_name: str) -> str:
    """The Pod of a platform container name (also its default host name, so at most 63)."""
    return dns_label(container_name)


def service_name(network: str) -> str:
    """The headless Service of a network (a DNS-1035 label: starts with a letter)."""
    return dns_label(network, letter_first=True)


def label_value(value: str) -> str:
    """A valid label value for ``value``: itself when valid, else a hash of it."""
    return value if _LABEL_VALUE.match(value) else f"h-{_digest(value, 40)}"


def kube_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels as Kubernetes stores them (keys that are not valid label keys are left to the annotation)."""
    return {key: label_value(value) for key, value in labels.items() if _LABEL_KEY.match(key)}


def selector(labels: Mapping[str, str]) -> str:
    """A label selector matching objects that carry ``labels`` (then check :func:`labels_of`)."""
    return ",".join(f"{key}={value}" for key, value in kube_labels(labels).items())


def labels_of(metadata: Any) -> dict[str, str]:
    """The exact platform labels of an object we made (from the annotation)."""
    annotations = getattr(metadata, "annotations", None) or {}
    try:
        return dict(json.loads(annotations.get(LABELS_ANNOTATION) or "{}"))
    except ValueError:
        return {}


def _metadata(name: str, namespace: str, labels: Mapping[str, str], extra_labels: Mapping[str, str],
              annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**kube_labels(labels), **MANAGED_BY, **extra_labels},
        "annotations": {LABELS_ANNOTATION: json.dumps(dict(labels), sort_keys=True), **(annotations or {})},
    }


@dataclass(frozen=True)
class PodPlan:
    """What the backend decided beyond the spec: names, images, resources of the cluster."""

    namespace: str
    image: str
    """The image reference to run (after delivery to the cluster)."""
    pull_policy: str
    helper_image: str
    helper_pull_policy: str
    request_fraction: float = 1.0
    max_node_cpus: float | None = None
    """The largest node's allocatable CPUs: limits are clamped to it, as Docker clamps to the host."""
    max_node_memory: int | None = None
    cluster_has_gpus: bool = False
    cluster_domain: str = "cluster.local"


def _quantity_cpu(cpus: float) -> str:
    return f"{max(1, math.floor(cpus * 1000))}m"


def resources(spec: ContainerSpec, plan: PodPlan) -> dict[str, Any]:
    """Requests and limits: the instance's CPUs and memory, its GPUs (``nvidia.com/gpu``)."""
    limits: dict[str, Any] = {}
    requests: dict[str, Any] = {}
    if spec.cpus:
        cpus = min(spec.cpus, plan.max_node_cpus) if plan.max_node_cpus else spec.cpus
        limits["cpu"] = _quantity_cpu(cpus)
        requests["cpu"] = _quantity_cpu(cpus * plan.request_fraction) if plan.request_fraction else "0"
    if spec.memory_bytes:
        limits["memory"] = str(spec.memory_bytes)
        wanted = int(spec.memory_bytes * plan.request_fraction)
        requests["memory"] = str(min(wanted, plan.max_node_memory) if plan.max_node_memory else wanted)
    gpus = _gpu_count(spec.gpu_device_ids)
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
        requests["nvidia.com/gpu"] = str(gpus)
    answer: dict[str, Any] = {}
    if limits:
        answer["limits"] = limits
    if requests:
        answer["requests"] = requests
    return answer


def _gpu_count(device_ids: list[str] | None) -> int:
    """How many GPUs the spec asks for; ``["all"]`` (a runtime that cannot count) means one."""
    if not device_ids:
        return 0
    return 1 if device_ids == ["all"] else len(device_ids)


def _run_as(user: str | None) -> dict[str, Any]:
    if not user:
        return {}
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise RuntimeError_(f"Kubernetes runs containers as numeric users only (uid[:gid]), not {user!r}")
    context: dict[str, Any] = {"runAsUser": int(uid)}
    if gid:
        context["runAsGroup"] = int(gid)
    return context


def pod_manifest(spec: ContainerSpec, plan: PodPlan) -> dict[str, Any]:
    """The Pod that runs ``spec`` (see the module docstring for its three containers)."""
    name = pod_name(spec.name)
    volumes: list[dict[str, Any]] = [{"name": "smemu-ctl", "emptyDir": {}}]
    main_mounts: list[dict[str, Any]] = []
    helper_mounts: list[dict[str, Any]] = [{"name": "smemu-ctl", "mountPath": CONTROL_DIR}]
    for number, folder in enumerate(spec.folders):
        volume = f"f{number}"
        volumes.append({"name": volume, "emptyDir": {}})
        main_mounts.append({"name": volume, "mountPath": folder.target, "readOnly": bool(folder.read_only)})
        helper_mounts.append({"name": volume, "mountPath": ROOT_DIR + folder.target})
    if spec.shm_size_bytes:
        volumes.append({"name": "smemu-shm", "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.shm_size_bytes)}})
        main_mounts.append({"name": "smemu-shm", "mountPath": "/dev/shm"})
    environment = [{"name": key, "value": value} for key, value in spec.environment.items()]
    if plan.cluster_has_gpus and not spec.gpu_device_ids:
        # An NVIDIA default runtime gives every GPU to an image that says NVIDIA_VISIBLE_DEVICES=all.
        environment = [e for e in environment if e["name"] != "NVIDIA_VISIBLE_DEVICES"]
        environment.append({"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"})
    main: dict[str, Any] = {
        "name": MAIN,
        "image": plan.image,
        "imagePullPolicy": plan.pull_policy,
        "env": environment,
        "volumeMounts": main_mounts,
        "resources": resources(spec, plan),
        "ports": [{"containerPort": port, "protocol": "TCP"} for port in spec.expose_ports],
    }
    if spec.entrypoint is not None:
        main["command"] = list(spec.entrypoint)
    if spec.command is not None:
        main["args"] = list(spec.command)
    security = _run_as(spec.user)
    if security:
        main["securityContext"] = security
    helper = {"image": plan.helper_image, "imagePullPolicy": plan.helper_pull_policy,
              "volumeMounts": helper_mounts, "resources": HELPER_RESOURCES}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "shareProcessNamespace": True,
        "terminationGracePeriodSeconds": 1,
        "initContainers": [{**helper, "name": STAGER, "command": [
            "sh", "-c", f"until [ -e {STAGED_MARKER} ]; do sleep 0.05; done"]}],
        "containers": [main, {**helper, "name": COLLECTOR, "command": ["sleep", "2147483647"]}],
        "volumes": volumes,
    }
    extra_labels = {POD_LABEL: name}
    if spec.hostname:
        pod_spec["hostname"] = dns_label(spec.hostname)
    if spec.network and not spec.network_isolated:
        service = service_name(spec.network)
        extra_labels[NETWORK_LABEL] = service
        pod_spec["subdomain"] = service
        pod_spec["dnsConfig"] = {"searches": [f"{service}.{plan.namespace}.svc.{plan.cluster_domain}"]}
    annotations = {NAME_ANNOTATION: spec.name, PORTS_ANNOTATION: json.dumps(list(spec.expose_ports))}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(name, plan.namespace, spec.labels, extra_labels, annotations),
        "spec": pod_spec,
    }


def headless_service(network: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The Service that gives a network's pods their host names (no cluster IP, no ports)."""
    name = service_name(network)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels, {}, {NAME_ANNOTATION: network}),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True, "selector": {NETWORK_LABEL: name}},
    }


def network_policy_for_network(network: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """An internal network: its pods reach each other (and cluster DNS, for the names) and nothing else."""
    name = service_name(network)
    peers = {"podSelector": {"matchLabels": {NETWORK_LABEL: name}}}
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, namespace, labels, {}, {NAME_ANNOTATION: network}),
        "spec": {"podSelector": {"matchLabels": {NETWORK_LABEL: name}}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": [peers]}], "egress": [{"to": [peers]}, dns]},
    }


def network_policy_isolated(pod: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """No network at all for one pod (Docker's ``--network none``)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(pod, namespace, labels, {}),
        "spec": {"podSelector": {"matchLabels": {POD_LABEL: pod}}, "policyTypes": ["Ingress", "Egress"]},
    }


def helper_path(container_path: str) -> str:
    """Where the helper containers see ``container_path`` of ``main``."""
    return ROOT_DIR + str(PurePosixPath(container_path))


_SIGNAL_SCRIPT = r"""
me=$(cat /proc/self/cgroup)
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = 1 ] && continue
  c=$(cat "$d/cgroup" 2>/dev/null) || continue
  [ "$c" = "$me" ] && continue
  if [ "$2" = top ]; then
    pp=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
    [ "$pp" = 0 ] || continue
  fi
  kill -"$1" "$p" 2>/dev/null && echo "$p"
done
true
"""


def signal_command(signal: str, everyone: bool) -> list[str]:
    """A command for the collector that signals ``main``'s processes.

    In the pod's shared process namespace every container's first process has parent 0 (its
    parent, the runtime's shim, is outside); the pause process is 1. ``main``'s are those in
    another cgroup than the collector's own. SIGTERM goes to ``main``'s first process only, as
    Docker sends it; SIGKILL to every process of ``main``.
    """
    return ["sh", "-c", _SIGNAL_SCRIPT, "signal", signal, "all" if everyone else "top"]
