"""torch.fx tracing that is safe beside other threads' forward passes.

While it traces, torch.fx patches `nn.Module.__call__` and `nn.Module.__getattr__` for the whole process. A
forward pass on another thread in that time (the device thread serving another model, a codec thread
embedding a text) would go through the tracer and fail ("module is not installed as a submodule"), and two
traces at once would restore each other's patches out of order and leave one in place. So a trace here
intercepts only its own thread's calls, and traces take turns.
"""

from __future__ import annotations

import threading
from typing import Any

from torch import fx, nn

_ONE_AT_A_TIME = threading.Lock()


class _OwnThreadTracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self._owner = threading.get_ident()

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        if threading.get_ident() != self._owner:
            return forward(*args, **kwargs)  # another thread's pass: the module's own call
        return super().call_module(m, forward, args, kwargs)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if threading.get_ident() != self._owner:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


def trace(module: nn.Module) -> fx.Graph:
    """The graph `fx.symbolic_trace(module)` has, without disturbing other threads."""
    with _ONE_AT_A_TIME:
        return _OwnThreadTracer().trace(module)
