"""The Kubernetes objects of a ContainerSpec (pure: no cluster), and the tar helpers both backends use."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from emulator.config import load_settings
from emulator.runtime import kube_objects as objects
from emulator.runtime.kube_images import choose_mode, containerd_name
from emulator.runtime.kubernetes_backend import _log_line
from emulator.runtime.spec import ContainerSpec, RuntimeError_, StagedFolder
from emulator.runtime.tarballs import UnsupportedFile, archive_of_folders, extract_folder

PLAN = objects.PodPlan(namespace="smemu", image="train:1", pull_policy="Never", helper_image="busybox:1.35",
                       helper_pull_policy="Never", request_fraction=0.5, max_node_cpus=2.0,
                       max_node_memory=4 * 1024**3)


def _spec(**changes: object) -> ContainerSpec:
    base: dict[str, object] = {
        "name": "smemu-train-job-1-algo-1", "image": "train:1", "command": ["train"], "hostname": "algo-1",
        "network": "smemu-train-job-1", "environment": {"A": "1"},
        "folders": [StagedFolder(Path("/tmp/in"), "/opt/ml/input", read_only=True),
                    StagedFolder(Path("/tmp/train"), "/opt/ml/input/data/train", read_only=True),
                    StagedFolder(None, "/opt/ml/model", private=True)],
        "memory_bytes": 8 * 1024**3, "cpus": 4.0, "labels": {"smemu.kind": "training-job", "smemu.name": "job-1"},
        "expose_ports": [8080], "shm_size_bytes": 1024**3}
    base.update(changes)
    return ContainerSpec(**base)  # type: ignore[arg-type]


def test_pod_runs_the_spec_with_a_stager_and_a_collector() -> None:
    pod = objects.pod_manifest(_spec(), PLAN)
    spec = pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == [objects.STAGER]
    assert [c["name"] for c in spec["containers"]] == [objects.MAIN, objects.COLLECTOR]
    main = spec["containers"][0]
    assert main["image"] == "train:1" and main["imagePullPolicy"] == "Never"
    assert main["args"] == ["train"] and "command" not in main  # the image's ENTRYPOINT stays
    assert {"name": "A", "value": "1"} in main["env"]
    mounts = {m["mountPath"]: m["readOnly"] for m in main["volumeMounts"] if m["name"].startswith("f")}
    assert mounts == {"/opt/ml/input": True, "/opt/ml/input/data/train": True, "/opt/ml/model": False}
    collector_paths = {m["mountPath"] for m in spec["containers"][1]["volumeMounts"]}
    assert "/smemu/root/opt/ml/input/data/train" in collector_paths and objects.CONTROL_DIR in collector_paths
    assert {"mountPath": "/dev/shm", "name": "smemu-shm"} in main["volumeMounts"]
    assert spec["restartPolicy"] == "Never" and spec["shareProcessNamespace"] is True
    assert spec["automountServiceAccountToken"] is False
    assert main["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_hosts_of_a_network_resolve_through_the_headless_service() -> None:
    pod = objects.pod_manifest(_spec(), PLAN)
    service = objects.headless_service("smemu-train-job-1", "smemu", {"smemu.kind": "training-job"})
    assert pod["spec"]["hostname"] == "algo-1"
    assert pod["spec"]["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {objects.NETWORK_LABEL: service["metadata"]["name"]}
    assert pod["metadata"]["labels"][objects.NETWORK_LABEL] == service["metadata"]["name"]
    assert pod["spec"]["dnsConfig"]["searches"] == [f"{service['metadata']['name']}.smemu.svc.cluster.local"]


def test_resources_follow_the_instance_clamped_to_the_largest_node() -> None:
    resources = objects.resources(_spec(gpu_device_ids=["0", "1"]), PLAN)
    assert resources["limits"] == {"cpu": "2000m", "memory": str(8 * 1024**3), "nvidia.com/gpu": "2"}
    assert resources["requests"]["cpu"] == "1000m"  # half of the clamped limit
    assert resources["requests"]["memory"] == str(4 * 1024**3)  # no more than the node has
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert objects.resources(_spec(cpus=None, memory_bytes=None), PLAN) == {}


def test_cpu_pods_on_a_gpu_cluster_see_no_gpu() -> None:
    plan = objects.PodPlan(**{**PLAN.__dict__, "cluster_has_gpus": True})
    env = objects.pod_manifest(_spec(environment={"NVIDIA_VISIBLE_DEVICES": "all"}), plan)["spec"]["containers"][0]["env"]
    assert env == [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"}]


def test_names_and_labels_are_made_valid_and_the_exact_labels_kept() -> None:
    long = "smemu-ep-" + "x" * 80 + "-AllTraffic-i-0123"
    name = objects.pod_name(long)
    assert len(name) <= 63 and name == name.lower() and name != objects.pod_name(long + "2")
    assert objects.service_name("1abc") .startswith("s-")
    labels = {"smemu.kind": "endpoint", "smemu.variant": "Variant With Spaces", "smemu.name": "e"}
    pod = objects.pod_manifest(_spec(labels=labels, network=None, hostname=None), PLAN)
    stored = pod["metadata"]["labels"]
    assert stored["smemu.variant"].startswith("h-") and stored["smemu.name"] == "e"
    metadata = SimpleNamespace(annotations=pod["metadata"]["annotations"])
    assert objects.labels_of(metadata) == labels
    assert "smemu.variant=h-" in objects.selector(labels)


def test_isolation_policies_deny_everything_but_peers() -> None:
    alone = objects.network_policy_isolated("p", "smemu", {})
    assert alone["spec"]["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in alone["spec"]
    internal = objects.network_policy_for_network("net", "smemu", {})
    peers = internal["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peers == {objects.NETWORK_LABEL: objects.service_name("net")}


def test_a_named_user_is_refused() -> None:
    with pytest.raises(RuntimeError_, match="numeric"):
        objects.pod_manifest(_spec(user="nobody"), PLAN)
    pod = objects.pod_manifest(_spec(user="1000:100"), PLAN)
    assert pod["spec"]["containers"][0]["securityContext"] == {"runAsUser": 1000, "runAsGroup": 100}


def test_archive_of_folders_prefixes_members_and_sets_modes(tmp_path: Path) -> None:
    (tmp_path / "ro" / "sub").mkdir(parents=True)
    (tmp_path / "ro" / "sub" / "a.txt").write_text("a")
    os.chmod(tmp_path / "ro" / "sub" / "a.txt", 0o600)
    (tmp_path / "rw").mkdir()
    (tmp_path / "rw" / "b.txt").write_text("b")
    archive, size = archive_of_folders([(tmp_path / "ro", "smemu/root/opt/ml/input", False),
                                        (tmp_path / "rw", "smemu/root/opt/ml/model", True)])
    with archive, tarfile.open(fileobj=archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert size > 0
    assert members["smemu/root/opt/ml/input/sub/a.txt"].mode == 0o644  # readable by the container's user
    assert members["smemu/root/opt/ml/model/b.txt"].mode == 0o666
    assert members["smemu/root/opt"].isdir() and members["smemu/root/opt/ml/input/sub/a.txt"].uid == 0


def test_a_fifo_cannot_be_staged(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "train_0")
    with pytest.raises(UnsupportedFile, match="FIFO"):
        archive_of_folders([(tmp_path, "", False)])


def test_extract_folder_keeps_files_below_the_top_and_drops_links(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("model/m.bin", b"weights"), ("model/sub/x", b"x"), ("other/y", b"y")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("model/escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    extract_folder([buffer.getvalue()[:700], buffer.getvalue()[700:]], "model", tmp_path / "out")
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"weights"
    assert (tmp_path / "out" / "sub" / "x").read_bytes() == b"x"
    assert not (tmp_path / "out" / "escape").exists() and not (tmp_path / "out" / "y").exists()


def test_image_names_as_containerd_keeps_them() -> None:
    assert containerd_name("train:1") == "docker.io/library/train:1"
    assert containerd_name("team/train") == "docker.io/team/train:latest"
    assert containerd_name("127.0.0.1:4571/repo:tag") == "127.0.0.1:4571/repo:tag"
    assert choose_mode("auto", "someone-elses-cluster") == "cluster"
    assert choose_mode("registry:10.0.0.1:5000", None) == "registry:10.0.0.1:5000"


def test_kubelet_log_lines_keep_their_timestamps() -> None:
    stamp, text = _log_line(b"2026-11-25T10:00:01.250000000Z epoch 1 loss 0.5")
    assert text == "epoch 1 loss 0.5" and abs(stamp - 1795600801.25) < 1e-3


def test_runtime_settings_are_checked_at_start() -> None:
    settings = load_settings({"SMEMU_RUNTIME": "kubernetes", "SMEMU_KUBE_NAMESPACE": "ml",
                              "SMEMU_KUBE_IMAGES": "registry:10.0.0.1:5000", "SMEMU_KUBE_NETWORK_POLICY": "1"})
    assert settings.runtime == "kubernetes" and settings.kubernetes.namespace == "ml"
    assert settings.kubernetes.network_policy is True
    assert load_settings({}).runtime == "docker"
    for bad in ({"SMEMU_RUNTIME": "podman"}, {"SMEMU_KUBE_IMAGES": "ftp"}, {"SMEMU_KUBE_REQUEST_FRACTION": "2"}):
        with pytest.raises(ValueError):
            load_settings(bad)


def test_signal_command_targets_the_main_container_only() -> None:
    command = objects.signal_command("TERM", everyone=False)
    assert command[:2] == ["sh", "-c"] and command[-2:] == ["TERM", "top"]
    assert json.dumps(objects.signal_command("KILL", everyone=True)).endswith('"KILL", "all"]')
