"""Machinery every kind of job shares: hosts, S3 inputs, Pipe FIFOs, container runs, logs.

Training, processing and (for its logs) batch transform describe their jobs in these terms:
``hosts`` (``algo-1..N``), ``channels`` (which S3 objects an input holds, how they are
sharded between hosts and downloaded), ``pipe`` (Pipe mode: FIFOs fed from S3 while the
container reads), ``attempt`` (start every host's container, wait for exits, signals and
deadlines, end the rest with SIGTERM and a grace), ``logs`` (container output into a
CloudWatch Logs group, one stream per host) and ``records`` (the List* grammar and primary
status moves of jobs that have no secondary status).
"""
