"""Processing jobs executed for real in containers (CreateProcessingJob and friends).

``service`` has the operations; ``runner`` drives a job through the runtime backend with the
shared machinery of ``emulator.jobs``; ``validation`` (rules beyond botocore's model),
``layout`` (/opt/ml/config, each host's ContainerSpec) and ``inputs`` (File and Pipe inputs,
EndOfJob and Continuous outputs) have one concern each.
"""
