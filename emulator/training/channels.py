"""Input channels of a training job: the shared S3 input machinery of emulator/jobs/channels.py."""

from emulator.jobs.channels import (  # noqa: F401 - this module's names are the shared module's
    ChannelError,
    DataObject,
    download,
    list_objects,
    local_folder,
    shard,
)
