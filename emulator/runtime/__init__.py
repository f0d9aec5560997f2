"""The one seam between the platform and the machines that run containers (DESIGN.md decision 9).

Training, processing, transform and hosting describe *what* to run with the types in
:mod:`emulator.runtime.spec`; a backend decides *how*: :mod:`emulator.runtime.docker_backend`
(this machine's engine) or :mod:`emulator.runtime.kubernetes_backend` (a cluster), chosen by
SMEMU_RUNTIME in :mod:`emulator.runtime.factory`; this machine's own engine (images, registry
pushes, the container gateway's network) is a :class:`~emulator.runtime.spec.LocalEngine`. The
platform injects both (lazily, :mod:`emulator.runtime.lazy`). Nothing outside this package
imports docker-py (test tooling takes its client from :mod:`emulator.runtime.docker_client`).
"""
