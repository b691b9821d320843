"""The engine: plans in, passes on a device, results out. Nothing here knows a method, a codec or HTTP.

plan.py is the protocol explainers write plans in, and the objective a pass scores; hooks.py the forward
hooks a pass installs. jobs.py and policy.py decide which rows of which requests share the next pass (pure
bookkeeping), executor.py runs a pass on the device, device.py is the per-device thread that joins them to
the event loop, and runner.py is the event loop's side (queue limits, tickets, metrics). `run` (inline.py)
is the one synchronous way in.
"""

from .inline import run

__all__ = ["run"]
