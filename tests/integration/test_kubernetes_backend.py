"""The Kubernetes backend on the project's real local cluster (scripts/kube): no fake API server.

Each test runs real pods from the offline base image, which reaches the cluster the way a
user's locally built image does (loaded into the cluster's containerd).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.runtime.spec import ContainerSpec, ImageNotFound, RuntimeError_, StagedFolder

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(2400)]  # the first may build the cluster
pytest_plugins = ["tests.integration.kube_cluster"]

HOME_ID = "kube-tests"


@pytest.fixture()
def labels() -> Iterator[dict[str, str]]:
    """Labels of one test's objects (``smemu.name`` unique)."""
    return {"smemu.kind": "kube-test", "smemu.name": f"t-{uuid.uuid4().hex[:10]}", "smemu.home": HOME_ID}


@pytest.fixture()
def cleanup(kube_backend: Any, labels: dict[str, str]) -> Iterator[None]:
    """Whatever a test leaves is removed by label."""
    yield
    kube_backend.remove_labelled(labels)


def _python(script: str) -> list[str]:
    return ["python3", "-u", "-c", script]


def _lines(backend: Any, pod: str) -> list[str]:
    return [line for _stamp, line in backend.logs(pod, follow=False)]


def _wait_for_line(backend: Any, pod: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in _lines(backend, pod)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{pod} never printed {text!r}; it printed {_lines(backend, pod)}")


PEER_SCRIPT = r"""
import json, os, socket, threading, time
me = socket.gethostname()
peer = os.environ["PEER"]
served = threading.Event()
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("", 7000)); server.listen()
def serve():
    connection, _ = server.accept()
    connection.sendall(me.encode()); connection.close(); served.set()
threading.Thread(target=serve, daemon=True).start()
deadline = time.time() + 90
answer = None
while answer is None and time.time() < deadline:
    try:
        with socket.create_connection((peer, 7000), timeout=2) as c:
            answer = c.recv(100).decode()
    except OSError:
        time.sleep(0.2)
served.wait(90)
data = open("/opt/ml/input/data/train/shard.txt").read().strip()
config = json.load(open("/opt/ml/input/config/resourceconfig.json"))
print(json.dumps({"me": me, "peer_answer": answer, "data": data, "hosts": config["hosts"], "served": served.is_set()}))
"""


def test_two_pods_reach_each_other_by_name_and_read_their_staged_data(
        kube_backend: Any, kube_test_image: str, labels: dict[str, str], cleanup: None, tmp_path: Path) -> None:
    network = f"smemu-train-{labels['smemu.name']}"
    kube_backend.create_network(network, labels)
    pods = {}
    for host, peer in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
        config, shard = tmp_path / host / "input", tmp_path / host / "train"
        (config / "config").mkdir(parents=True)
        (config / "config" / "resourceconfig.json").write_text(json.dumps({"hosts": ["algo-1", "algo-2"]}))
        shard.mkdir()
        (shard / "shard.txt").write_text(f"shard of {host}\n")
        spec = ContainerSpec(
            name=f"smemu-train-{labels['smemu.name']}-{host}", image=kube_test_image, command=_python(PEER_SCRIPT),
            environment={"PEER": peer}, hostname=host, network=network, labels={**labels, "smemu.host": host},
            folders=[StagedFolder(config, "/opt/ml/input", read_only=True),
                     StagedFolder(shard, "/opt/ml/input/data/train", read_only=True)],
            memory_bytes=512 * 1024**2, cpus=1.0)
        pods[host] = kube_backend.start(spec)
    for host, pod in pods.items():
        exit_ = kube_backend.wait(pod, timeout=120)
        assert exit_ is not None and exit_.exit_code == 0, (exit_, _lines(kube_backend, pod))
        report = json.loads(_lines(kube_backend, pod)[-1])
        peer = "algo-2" if host == "algo-1" else "algo-1"
        assert report == {"me": host, "peer_answer": peer, "data": f"shard of {host}",
                          "hosts": ["algo-1", "algo-2"], "served": True}


COPY_SCRIPT = r"""
import os, pathlib, sys
pathlib.Path("/opt/ml/model/weights.bin").write_bytes(b"w" * 100000)
pathlib.Path("/opt/ml/output/data/metrics.txt").write_text("loss 0.1\n")
pathlib.Path("/opt/ml/output/failure").write_text("boom\n")
try:
    open("/opt/ml/input/config/x", "w")
    print("input is writable")
except OSError as exc:
    print("input is read-only:", exc.errno)
print("line one"); print("line two", file=sys.stderr)
sys.exit(3)
"""


def test_private_folders_come_back_out_after_the_exit_code_and_logs(
        kube_backend: Any, kube_test_image: str, labels: dict[str, str], cleanup: None, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "seed.txt").write_text("from the platform")
    (tmp_path / "input" / "config").mkdir(parents=True)
    started = time.time()
    pod = kube_backend.start(ContainerSpec(
        name=f"smemu-copy-{labels['smemu.name']}", image=kube_test_image, command=_python(COPY_SCRIPT),
        labels=labels, folders=[StagedFolder(tmp_path / "input", "/opt/ml/input", read_only=True),
                                StagedFolder(seed, "/opt/ml/model", private=True),
                                StagedFolder(None, "/opt/ml/output", private=True),
                                StagedFolder(None, "/opt/ml/output/data", private=True)]))
    exit_ = kube_backend.wait(pod, timeout=120)
    assert exit_ is not None and (exit_.exit_code, exit_.oom_killed) == (3, False)
    assert not kube_backend.is_running(pod)

    assert kube_backend.copy_out(pod, "/opt/ml/model", tmp_path / "model")
    assert (tmp_path / "model" / "seed.txt").read_text() == "from the platform"
    assert (tmp_path / "model" / "weights.bin").read_bytes() == b"w" * 100000
    assert (tmp_path / "model" / "weights.bin").stat().st_uid == os.getuid()
    assert kube_backend.copy_out(pod, "/opt/ml/output", tmp_path / "output")  # with its nested data folder
    assert (tmp_path / "output" / "failure").read_text() == "boom\n"
    assert (tmp_path / "output" / "data" / "metrics.txt").read_text() == "loss 0.1\n"
    with pytest.raises(RuntimeError_, match="staged folders"):
        kube_backend.copy_out(pod, "/etc", tmp_path / "etc")

    logged = list(kube_backend.logs(pod, follow=True))  # follow ends with the exited container
    lines = [line for _t, line in logged]  # stdout in order; stderr's line may come anywhere among them
    assert [line for line in lines if line != "line two"] == ["input is read-only: 30", "line one"]
    assert sorted(lines) == sorted(["input is read-only: 30", "line one", "line two"])
    assert all(started - 5 <= stamp <= time.time() + 5 for stamp, _line in logged)


STOP_SCRIPT = r"""
import pathlib, signal, sys, time
def on_term(signum, frame):
    pathlib.Path("/opt/ml/model/stopped").write_text("saved on SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term if sys.argv[1] == "handle" else signal.SIG_IGN)
print("ready", flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("behaviour", ["handle", "ignore"])
def test_stop_sends_sigterm_then_sigkill_after_the_grace(
        kube_backend: Any, kube_test_image: str, labels: dict[str, str], cleanup: None, tmp_path: Path,
        behaviour: str) -> None:
    pod = kube_backend.start(ContainerSpec(
        name=f"smemu-stop-{labels['smemu.name']}", image=kube_test_image,
        command=["python3", "-u", "-c", STOP_SCRIPT, behaviour], labels=labels,
        folders=[StagedFolder(None, "/opt/ml/model", private=True)]))
    _wait_for_line(kube_backend, pod, "ready")
    kube_backend.stop(pod, grace_seconds=3 if behaviour == "ignore" else 60)
    exit_ = kube_backend.wait(pod, timeout=30)
    assert exit_ is not None
    assert kube_backend.copy_out(pod, "/opt/ml/model", tmp_path / "model")
    if behaviour == "handle":
        assert exit_.exit_code == 0
        assert (tmp_path / "model" / "stopped").read_text() == "saved on SIGTERM"
    else:
        assert exit_.exit_code == 137  # SIGKILL after the grace
        assert not (tmp_path / "model" / "stopped").exists()
    kube_backend.kill(pod)  # an exited container: nothing to do


def test_exceeding_the_memory_limit_is_an_oom_kill(kube_backend: Any, kube_test_image: str,
                                                    labels: dict[str, str], cleanup: None) -> None:
    pod = kube_backend.start(ContainerSpec(
        name=f"smemu-oom-{labels['smemu.name']}", image=kube_test_image, labels=labels,
        command=_python("x = bytearray(512 * 1024 * 1024)\nfor i in range(0, len(x), 4096): x[i] = 1"),
        memory_bytes=96 * 1024**2))
    exit_ = kube_backend.wait(pod, timeout=120)
    assert exit_ is not None and exit_.oom_killed, exit_


SERVE_SCRIPT = r"""
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"pong"
        self.send_response(200); self.send_header("Content-Length", "4"); self.end_headers(); self.wfile.write(body)
http.server.HTTPServer(("", 8080), Handler).serve_forever()
"""


def test_a_published_port_answers_and_labelled_pods_are_found_and_removed(
        kube_backend: Any, kube_test_image: str, labels: dict[str, str], tmp_path: Path) -> None:
    pod = kube_backend.start(ContainerSpec(
        name=f"smemu-ep-{labels['smemu.name']}", image=kube_test_image, command=_python(SERVE_SCRIPT),
        expose_ports=[8080], labels={**labels, "smemu.variant": "All Traffic"}))
    host, port = kube_backend.published_port(pod, 8080)
    deadline, answer = time.monotonic() + 60, None
    while answer is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/ping", timeout=2) as response:
                answer = response.read()
        except OSError:
            time.sleep(0.1)
    assert answer == b"pong"
    with pytest.raises(RuntimeError_):
        kube_backend.published_port(pod, 9999)

    found = kube_backend.find({"smemu.name": labels["smemu.name"], "smemu.variant": "All Traffic"})
    assert [(f.id, f.running, f.labels["smemu.variant"]) for f in found] == [(pod, True, "All Traffic")]
    assert kube_backend.find({"smemu.name": labels["smemu.name"], "smemu.variant": "Other"}) == []
    assert kube_backend.remove_labelled(labels) == 1
    assert kube_backend.find(labels) == []
    assert not kube_backend.is_running(pod)


def test_an_unknown_image_fails_naming_it(kube_backend: Any) -> None:
    with pytest.raises(ImageNotFound, match="smemu-test/no-such-image:never"):
        kube_backend.ensure_image("smemu-test/no-such-image:never")


def test_network_isolation_is_refused_where_it_cannot_be_enforced(
        kube_backend: Any, kube_test_image: str, labels: dict[str, str], cleanup: None) -> None:
    with pytest.raises(RuntimeError_, match="NetworkPolicy"):
        kube_backend.start(ContainerSpec(name=f"smemu-iso-{labels['smemu.name']}", image=kube_test_image,
                                         command=["true"], labels=labels, network_isolated=True))
    with pytest.raises(RuntimeError_, match="NetworkPolicy"):
        kube_backend.create_network(f"smemu-net-{labels['smemu.name']}", labels, internal=True)
    assert kube_backend.find(labels) == []


def test_the_network_guards_come_first(kube_cluster: str) -> None:
    """Pods reach pods and nothing else; untranslated service traffic never leaves (scripts/kube)."""
    import subprocess

    def rules(*arguments: str) -> list[str]:
        return subprocess.run(["iptables", "-w", "-S", *arguments], capture_output=True, text=True,
                              check=True).stdout.splitlines()

    for chain, guard in (("FORWARD", "SMEMU-KUBE-FWD"), ("OUTPUT", "SMEMU-KUBE-OUT")):
        listed = rules(chain)
        before = listed[:listed.index(f"-A {chain} -j {guard}")]
        # Docker inserts its networks' rules at the top too; they only match its own bridges.
        unbound = [rule for rule in before if rule.endswith("-j ACCEPT") and not re.search(r"-[io] (?!smemu)\S+", rule)]
        assert unbound == [], listed  # nothing accepts pod traffic before the guard
    forward = rules("SMEMU-KUBE-FWD")
    assert "-A SMEMU-KUBE-FWD -s 10.88.0.0/16 -d 10.88.0.0/16 -j ACCEPT" in forward
    assert any(rule.startswith("-A SMEMU-KUBE-FWD -s 10.88.0.0/16 -j REJECT") for rule in forward)
    assert any("-d 10.96.0.0/16" in rule and "! --ctstate DNAT" in rule and "REJECT" in rule
               for rule in rules("SMEMU-KUBE-OUT"))


def test_etcd_answers_only_the_clusters_own_certificates(kube_cluster: str) -> None:
    """Any local user could otherwise write the cluster's state (and run a privileged pod)."""
    import ssl
    import urllib.error

    with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
        urllib.request.urlopen("http://127.0.0.1:23790/health", timeout=5)
    anonymous = ssl.create_default_context(cafile="/var/lib/smemu-kube/pki/ca.crt")
    with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
        urllib.request.urlopen("https://127.0.0.1:23790/health", timeout=5, context=anonymous)
    trusted = ssl.create_default_context(cafile="/var/lib/smemu-kube/pki/ca.crt")
    trusted.load_cert_chain("/var/lib/smemu-kube/pki/apiserver-etcd.crt", "/var/lib/smemu-kube/pki/apiserver-etcd.key")
    with urllib.request.urlopen("https://127.0.0.1:23790/health", timeout=5, context=trusted) as answer:
        assert answer.status == 200
