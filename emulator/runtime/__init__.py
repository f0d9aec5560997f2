"""The one seam between the platform and the machines that run containers (DESIGN.md decision 9).

Training, processing, transform and hosting describe *what* to run with the types in
:mod:`emulator.runtime.spec`; a backend (:mod:`emulator.runtime.docker_backend`, the only one
for now) decides *how*. Nothing outside this package imports docker-py.
"""
