"""Training jobs executed for real in containers (CreateTrainingJob and friends).

``service`` has the operations; ``runner`` (phases and statuses) drives a job through the
runtime backend with ``emulator.jobs.attempt`` (one run of the hosts' containers);
``lifecycle`` is the pure state machine. One concern each: ``validation`` (rules beyond
botocore's model), ``knobs`` (emulator-only tags: spot interruptions, smaller instances),
``layout`` (hosts and the /opt/ml config files), ``staging`` (the Downloading phase, over
``emulator.jobs.channels``; Pipe mode FIFOs and RecordIO are ``emulator.jobs.pipe``),
``containers`` (each host's ContainerSpec), ``metrics`` (MetricDefinitions; the lines come
from ``emulator.jobs.logs``), ``collect`` and ``artifacts`` (what the containers leave:
model.tar.gz, output.tar.gz, FailureReason, checkpoints). ``channels`` and ``pipe`` remain
importable here under their old names.
"""
