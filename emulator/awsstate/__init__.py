"""moto's state made durable: a write-ahead journal of changes (recorder.py), compacted into checkpoints
of moto's backends (snapshot.py) so a start loads the state and replays only the changes since."""

from emulator.awsstate.journal import JournalError
from emulator.awsstate.recorder import AwsState, direct_write

__all__ = ["AwsState", "JournalError", "direct_write"]
