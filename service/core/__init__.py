"""The protocol-neutral application: explain, predict, sanity checks, deadlines and the one row counter.

It imports neither FastAPI nor an API's schemas: v1 and v2 (service/api) translate into and out of these
calls, and the commands (service/cli) call them directly.
"""

from .checks import Target, check_method, codec_of, echo, parse_methods, resolve_targets
from .explain import explain, predict
from .results import Explained, Predicted, Ranked
from .services import Services, build_services

__all__ = [
    "Explained",
    "Predicted",
    "Ranked",
    "Services",
    "Target",
    "build_services",
    "check_method",
    "codec_of",
    "echo",
    "explain",
    "parse_methods",
    "predict",
    "resolve_targets",
]
