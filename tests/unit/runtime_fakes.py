"""What every unit-test fake of the runtime backend shares: the methods their tests never vary.

Fakes subclass :class:`FakeBackendBase` and implement the container methods themselves;
tests/unit/test_runtime_protocol.py checks each one implements the whole RuntimeBackend.
"""

from __future__ import annotations


class FakeBackendBase:
    """GPUs as ``gpus`` says, no direct container addresses, no gateway subnets, nothing to close."""

    gpus: list[str] | None = None
    """GPU ids this fake engine offers (None: no GPU runtime)."""

    def gpus_available(self) -> bool:
        return self.gpus is not None

    def gpu_devices(self) -> list[str] | None:
        return None if self.gpus is None else list(self.gpus)

    def network_address(self, container_id: str, port: int) -> tuple[str, int] | None:
        return None

    def container_subnets(self, home: str) -> list[str]:
        return []

    def close(self) -> None:
        pass
