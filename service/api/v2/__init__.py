"""Open Inference Protocol v2 (KServe / Triton): thin routes over the same core as v1.

routes.py: the endpoints; parse.py and infer.py: request -> core call -> response (texts.py: a text's
tensors); wire.py: the body and the binary tensor data extension; tensors.py: tensor data <-> numpy;
errors.py: the v2 error shape.
"""

from .routes import health_router, router

__all__ = ["health_router", "router"]
