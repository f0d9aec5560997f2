"""Training jobs executed for real in containers (CreateTrainingJob and friends).

``service`` has the operations; ``runner`` (phases and statuses) and ``attempt`` (one run of
the hosts' containers) drive a job through the runtime backend; ``lifecycle`` is the pure state
machine. One concern each: ``validation`` (rules beyond botocore's model), ``knobs``
(emulator-only tags: spot interruptions, smaller instances), ``layout`` (hosts and the
/opt/ml config files), ``staging`` and ``channels`` (the Downloading phase), ``pipe`` (Pipe
mode FIFOs and RecordIO), ``containers`` (each host's ContainerSpec), ``logs`` and
``metrics`` (CloudWatch Logs, MetricDefinitions), ``collect`` and ``artifacts`` (what the
containers leave: model.tar.gz, output.tar.gz, FailureReason, checkpoints).
"""
