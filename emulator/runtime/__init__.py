"""The one seam between the platform and the machines that run containers (DESIGN.md decision 9).

Training, processing, transform and hosting describe *what* to run with the types in
:mod:`emulator.runtime.spec`; a backend decides *how*: :mod:`emulator.runtime.docker_backend`
(this machine's engine) or :mod:`emulator.runtime.kubernetes_backend` (a cluster), chosen by
SMEMU_RUNTIME in :mod:`emulator.runtime.factory`. Nothing outside this package imports docker-py.
"""
