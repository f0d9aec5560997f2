"""moto's state made durable: a write-ahead journal of changes, replayed at start (recorder.py)."""

from emulator.awsstate.journal import JournalError
from emulator.awsstate.recorder import AwsState, direct_write

__all__ = ["AwsState", "JournalError", "direct_write"]
