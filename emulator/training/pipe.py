"""Pipe input mode of a training job: the shared FIFO feeder of emulator/jobs/pipe.py."""

from emulator.jobs.pipe import (  # noqa: F401 - this module's names are the shared module's
    RECORDIO_MAGIC,
    PipeFeeder,
    read_recordio,
    recordio_record,
)
