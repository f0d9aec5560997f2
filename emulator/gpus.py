"""Which GPUs each host of a job, or each instance of an endpoint, gets (pure; docs/gpu.md).

Inputs: the instance types of the hosts (or instances), the GPU devices the engine can hand
out (``RuntimeBackend.gpu_devices()``: ids, ``["all"]`` when it has a GPU runtime but cannot
count the devices, None when it has no GPU runtime), and the user's policy:

``SMEMU_GPUS``          ``all`` (default): every device the engine has; ``none``: GPUs off;
                        ``0,1`` or GPU UUIDs: only these devices.
``SMEMU_GPU_FALLBACK``  what to do when a GPU type cannot get its GPUs here:
                        ``off`` (default): refuse -- CreateTrainingJob/CreateEndpoint answer
                        ResourceLimitExceeded when it is known then, else the job or endpoint
                        fails with a CapacityError FailureReason;
                        ``cpu``: run without GPUs, logged as a warning for each job/endpoint;
                        ``share``: when there are GPUs but fewer than asked, hosts share them
                        (round robin) instead of each getting its own.

Devices are split by id, in order: with devices 0-3, two ``ml.g5.12xlarge`` hosts (4 GPUs
each) need 8 and are refused; two ``ml.g5.2xlarge`` hosts get ``["0"]`` and ``["1"]``. A
machine never silently runs a GPU type on CPU: either the GPUs are there, or the user chose
``SMEMU_GPU_FALLBACK=cpu``. Non-NVIDIA accelerators (Inferentia, Trainium, Gaudi) cannot be
given to containers at all; their types follow the same rule.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from emulator.instances import ALL_GPUS, NVIDIA, instance_type

log = logging.getLogger(__name__)

ALL = "all"
NONE = "none"
FALLBACK_OFF = "off"
FALLBACK_CPU = "cpu"
FALLBACK_SHARE = "share"
FALLBACKS = (FALLBACK_OFF, FALLBACK_CPU, FALLBACK_SHARE)

USAGE_TRAINING = "training job usage"
USAGE_ENDPOINT = "endpoint usage"
USAGE_PROCESSING = "processing job usage"
USAGE_TRANSFORM = "transform job usage"

_DEVICE_ID = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")


def parse_selection(value: str | None) -> str | tuple[str, ...]:
    """``SMEMU_GPUS``: :data:`ALL`, :data:`NONE` or a tuple of device ids; ValueError otherwise."""
    text = (value or ALL).strip()
    if text.lower() in (ALL, ""):
        return ALL
    if text.lower() in (NONE, "void", "off", "0 gpus"):
        return NONE
    ids = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [part for part in ids if not _DEVICE_ID.match(part)]
    if bad or not ids:
        raise ValueError(
            f"SMEMU_GPUS must be 'all', 'none' or comma-separated GPU indexes or UUIDs (e.g. '0,1'), got {value!r}"
        )
    if len(set(ids)) != len(ids):
        raise ValueError(f"SMEMU_GPUS names a device twice: {value!r}")
    return ids


def parse_fallback(value: str | None) -> str:
    """``SMEMU_GPU_FALLBACK``: one of :data:`FALLBACKS` (unset: off)."""
    text = (value or FALLBACK_OFF).strip().lower()
    if text in ("0", "false", "no", "none", ""):
        text = FALLBACK_OFF
    if text not in FALLBACKS:
        raise ValueError(f"SMEMU_GPU_FALLBACK must be one of {', '.join(FALLBACKS)}, got {value!r}")
    return text


@dataclass(frozen=True)
class GpuPolicy:
    """The user's GPU settings (``SMEMU_GPUS``, ``SMEMU_GPU_FALLBACK``, ``SMEMU_GPU_RUNTIME``)."""

    selection: str | tuple[str, ...] = ALL
    fallback: str = FALLBACK_OFF
    runtime: str = "nvidia"

    @classmethod
    def from_settings(cls, settings: object) -> GpuPolicy:
        """The policy of an ``emulator.config.Settings``."""
        return cls(
            selection=parse_selection(getattr(settings, "gpus", None)),
            fallback=parse_fallback(getattr(settings, "gpu_fallback", None)),
            runtime=str(getattr(settings, "gpu_runtime", "nvidia") or "nvidia"),
        )


class GpuUnavailable(Exception):
    """The GPUs (or accelerators) a request asks for cannot be given here; ``detail`` says why."""

    def __init__(self, detail: str, instance_type: str, requested: int, limit: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.instance_type = instance_type
        self.requested = requested
        """Instances of ``instance_type`` asked for."""
        self.limit = limit
        """Instances of ``instance_type`` this machine can give their GPUs to."""

    def limit_message(self, usage: str) -> str:
        """The ResourceLimitExceeded message AWS gives for a quota too small, plus the reason here.

        On AWS a new account's quota for GPU types is 0 and the create call answers exactly
        this; here the "quota" is how many instances this machine's GPUs can serve.
        """
        return (
            f"The account-level service limit '{self.instance_type} for {usage}' is {self.limit} Instances, "
            f"with current utilization of 0 Instances and a request delta of {self.requested} Instances. "
            "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas is not "
            f"available, contact AWS support to request an increase for this quota. (sagemaker-emulator: "
            f"{self.detail})"
        )

    def capacity_reason(self) -> str:
        """The FailureReason of a job or endpoint that could not get its GPUs when it started."""
        return (
            "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different "
            f"ML instance type. (sagemaker-emulator: {self.detail})"
        )


def _count(types: Sequence[str], name: str) -> int:
    return sum(1 for t in types if t == name)


_HOW_TO = (
    "See docs/gpu.md; set SMEMU_GPU_FALLBACK=cpu to run GPU instance types without GPUs."
)


def assign(instance_types: Sequence[str], devices: Sequence[str] | None, policy: GpuPolicy,
           what: str = "the job") -> list[list[str]]:
    """GPU device ids for each host/instance, in order (``[]``: no GPU); raises :class:`GpuUnavailable`.

    ``devices`` is what the engine offers (see the module's docstring). ``what`` names the job
    or endpoint in the warnings of a CPU fallback.
    """
    specs = [instance_type(t) for t in instance_types]
    if not any(s.accelerators for s in specs):
        return [[] for _ in specs]
    for spec in specs:
        if spec.accelerators and spec.accelerator_kind != NVIDIA:
            detail = (
                f"{spec.name} has {spec.accelerators} x {spec.accelerator_model} ({spec.accelerator_kind}); the "
                "emulator can give containers NVIDIA GPUs only."
            )
            if policy.fallback == FALLBACK_CPU:
                return _cpu_fallback(specs, detail, what)
            raise GpuUnavailable(f"{detail} {_HOW_TO}", spec.name, _count(instance_types, spec.name), 0)
    offered = _offered(devices, policy)
    if isinstance(offered, str):  # why there are none
        first = next(s for s in specs if s.gpus)
        if policy.fallback == FALLBACK_CPU:
            return _cpu_fallback(specs, offered, what)
        raise GpuUnavailable(f"{offered} {_HOW_TO}", first.name, _count(instance_types, first.name), 0)
    if offered == [ALL]:
        # A GPU runtime whose devices could not be counted: each GPU host gets every GPU.
        log.warning("%s: the number of GPUs here is unknown, so GPU hosts are not given separate devices", what)
        return [[ALL] if s.gpus else [] for s in specs]
    needs = [len(offered) if s.gpus == ALL_GPUS else s.gpus for s in specs]
    total = sum(n for n, s in zip(needs, specs) if s.gpus != ALL_GPUS)
    if total <= len(offered):
        plan, start = [], 0
        for need, spec in zip(needs, specs):
            if spec.gpus == ALL_GPUS:
                plan.append(list(offered))
                continue
            plan.append(list(offered[start:start + need]))
            start += need
        return plan
    shortage = (
        f"{' + '.join(_summary(instance_types))} need {total} GPU(s), and this machine offers {len(offered)}"
        + (f" ({', '.join(offered)})" if offered else "")
        + "."
    )
    if policy.fallback == FALLBACK_SHARE and offered:
        log.warning("%s: %s Sharing them between hosts (SMEMU_GPU_FALLBACK=share).", what, shortage)
        plan, cursor = [], 0
        for need in needs:
            take = min(need, len(offered))
            plan.append([offered[(cursor + i) % len(offered)] for i in range(take)])
            cursor += take
        return plan
    if policy.fallback == FALLBACK_CPU:
        return _cpu_fallback(specs, shortage, what)
    worst = next(s for s in specs if s.gpus and s.gpus != ALL_GPUS)
    limit = len(offered) // worst.gpus if worst.gpus > 0 else 0
    detail = f"{shortage} Set SMEMU_GPU_FALLBACK=share to let hosts share GPUs, or cpu to run without GPUs."
    raise GpuUnavailable(detail, worst.name, _count(instance_types, worst.name), limit)


def _summary(instance_types: Sequence[str]) -> list[str]:
    counts: dict[str, int] = {}
    for name in instance_types:
        counts[name] = counts.get(name, 0) + 1
    return [f"{n} x {name}" for name, n in counts.items() if instance_type(name).gpus]


def _offered(devices: Sequence[str] | None, policy: GpuPolicy) -> list[str] | str:
    """The devices the policy lets out of what the engine has, or a sentence saying why none."""
    if policy.selection == NONE:
        return "GPUs are turned off (SMEMU_GPUS=none)."
    if devices is None:
        runtime = policy.runtime
        return (
            f"the Docker engine has no NVIDIA container runtime (no runtime named '{runtime}' is registered; "
            f"SMEMU_GPU_RUNTIME names it), so containers cannot be given GPUs on this machine."
        )
    found = list(devices)
    if policy.selection == ALL:
        if not found:
            return "the Docker engine has an NVIDIA runtime, but this machine has no GPU."
        return found
    wanted = list(policy.selection)
    if found != [ALL]:
        missing = [d for d in wanted if d not in found]
        if missing:
            return (
                f"SMEMU_GPUS names GPU {', '.join(missing)}, which this machine does not have "
                f"(it has {', '.join(found) or 'none'})."
            )
    return wanted


def _cpu_fallback(specs: Sequence[object], why: str, what: str) -> list[list[str]]:
    log.warning(
        "GPU FALLBACK: %s runs WITHOUT GPUs or accelerators because %s (SMEMU_GPU_FALLBACK=cpu)", what,
        why[0].lower() + why[1:] if why else why,
    )
    return [[] for _ in specs]
