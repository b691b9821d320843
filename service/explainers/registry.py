"""The method registry: names -> explainers, and parsing of a client's method spec."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import InvalidParameter, UnknownMethod
from .attention_relevance import AttentionRelevance
from .attention_rollout import AttentionRollout
from .base import Explainer, Params
from .drise import DRise
from .eigencam import EigenCam
from .gradcam import GradCam
from .gradcam_pp import GradCamPlusPlus
from .gradient import Gradient
from .guided_backprop import GuidedBackprop
from .guided_gradcam import GuidedGradCam
from .input_x_gradient import InputXGradient
from .integrated_gradients import IntegratedGradients
from .layercam import LayerCam
from .occlusion import Occlusion
from .rise import Rise
from .scorecam import ScoreCam
from .smoothgrad import SmoothGrad, SmoothGradSquared, VarGrad
from .xgradcam import XGradCam

DEFAULT_EXPLAINERS: tuple[type[Explainer], ...] = (
    Gradient,
    InputXGradient,
    SmoothGrad,
    SmoothGradSquared,
    VarGrad,
    IntegratedGradients,
    GradCam,
    GradCamPlusPlus,
    Occlusion,
    GuidedBackprop,
    GuidedGradCam,
    XGradCam,
    LayerCam,
    Rise,
    ScoreCam,
    EigenCam,
    AttentionRollout,
    AttentionRelevance,
    DRise,
)


class Registry:
    def __init__(self, explainers: Iterable[Explainer]):
        self._by_name = {e.name: e for e in explainers}

    def __iter__(self):
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Explainer:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownMethod(
                f"unknown method {name!r}; available: {', '.join(self._by_name)}", field="method.name"
            ) from None

    def parse(self, spec: str | Mapping[str, Any], kind: str = "image") -> tuple[Explainer, Params]:
        """A method name, or {"name": ..., **params}, into the explainer and its parameters for a `kind` model."""
        if isinstance(spec, str):
            spec = {"name": spec}
        fields = dict(spec)
        name = fields.pop("name", None)
        if not isinstance(name, str) or not name:
            # {} and "" are the client's mistakes, not a request for the default method (which is no method).
            raise InvalidParameter("method needs a 'name' string (not empty; see GET /v1/methods)", field="method.name")
        explainer = self.get(name)
        try:
            return explainer, explainer.params_for(kind).model_validate(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidParameter(f"{name}: {where}: {first['msg']}", field=f"method.{where}") from None


def default_registry() -> Registry:
    return Registry(cls() for cls in DEFAULT_EXPLAINERS)
