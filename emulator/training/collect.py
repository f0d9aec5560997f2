"""After an attempt: read the hosts' folders back out of their containers.

Two questions are answered here, both from what the containers left in their private
folders (``RuntimeBackend.copy_out``): what to upload for a finished job (every host's
/opt/ml/model and /opt/ml/output/data, copied in parallel and merged in host order), and why a
failed job failed (the failure file of the first host that failed, else an OOM kill or the
exit code, in the words SageMaker uses).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from emulator.instances import instance_resources
from emulator.runtime.spec import ContainerExit, RuntimeBackend
from emulator.training.artifacts import failure_reason, merge_folders
from emulator.jobs.attempt import AttemptResult
from emulator.training.knobs import MEMORY_TAG
from emulator.training.layout import MODEL_DIR, OUTPUT_DATA_DIR, OUTPUT_DIR, Host

_PARALLEL_COPIES = 8
NO_FAILURE_FILE = "AlgorithmError: See job logs for more information"
"""How FailureReason starts when the failed host wrote no /opt/ml/output/failure."""


def collect_outputs(backend: RuntimeBackend, hosts: list[Host], result: AttemptResult, scratch: Path) -> tuple[Path, Path]:
    """``(model folder, output data folder)``, each merged over all hosts (a later host wins a clash)."""
    copies = [(host.name, folder, container_id) for host in hosts
              if (container_id := result.container_ids.get(host.name)) for folder in (MODEL_DIR, OUTPUT_DATA_DIR)]
    with ThreadPoolExecutor(max_workers=max(1, min(_PARALLEL_COPIES, len(copies))),
                            thread_name_prefix="smemu-collect") as pool:
        futures = [pool.submit(backend.copy_out, container_id, folder,
                               scratch / "hosts" / host / PurePosixPath(folder).name)
                   for host, folder, container_id in copies]
        for future in futures:
            future.result()
    merged = tuple(merge_folders([scratch / "hosts" / h.name / name for h in hosts], scratch / name)
                   for name in ("model", "data"))
    return merged[0], merged[1]


def failure_of(backend: RuntimeBackend, hosts: list[Host], result: AttemptResult, scratch: Path,
               memory_limit_mb: int | None = None) -> str:
    """FailureReason of a failed attempt."""
    order = result.failed_hosts + [h.name for h in hosts if h.name not in result.failed_hosts]
    outputs = []
    for host_name in order:
        container_id = result.container_ids.get(host_name)
        if container_id and backend.copy_out(container_id, OUTPUT_DIR, scratch / host_name):
            outputs.append(scratch / host_name)
    failed = result.failed_hosts[0] if result.failed_hosts else order[0]
    exit_ = result.exits.get(failed, ContainerExit(exit_code=-1))
    if exit_.oom_killed:
        host = next(h for h in hosts if h.name == failed)
        memory_gib = instance_resources(host.instance_type).memory_bytes / 1024**3
        limit = f"the {memory_gib:g} GiB of {host.instance_type}"
        if memory_limit_mb and memory_limit_mb < memory_gib * 1024:
            limit = f"its {memory_limit_mb} MiB limit (tag {MEMORY_TAG})"
        return (
            "OutOfMemoryError: Please use an instance type with more memory, or reduce the size of job data "
            f"processed on an instance. ({failed} was killed for exceeding {limit}.)"
        )
    return failure_reason(outputs) or f"{NO_FAILURE_FILE} ({failed} exited with code {exit_.exit_code})"
