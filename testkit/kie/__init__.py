"""A local KIE.ai for tests and the demo. Start with `await KieEmulator().start()` or
`python -m testkit.kie --port N`; fault knobs are documented in faults.py."""

from .callbacks import CallbackAttempt, CallbackRetry, sign
from .faults import Faults, StateDelays
from .server import KieEmulator, RecordedRequest
from .tasks import EmulatedTask

__all__ = [
    "CallbackAttempt",
    "CallbackRetry",
    "EmulatedTask",
    "Faults",
    "KieEmulator",
    "RecordedRequest",
    "StateDelays",
    "sign",
]
