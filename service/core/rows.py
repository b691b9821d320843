"""How many rows (model passes) a request needs: the one count that admission, the device queue, progress
and the sanity checks use.

A row is one input through the model, forward only or forward and backward; each method's `Cost.forward`
counts all of its rows (its backward rows are some of them), and faithfulness adds its curves' rows per
method. Before decoding a text's length is not known: its bound (max_length) counts, and progress counts
the tokens it has (`shape`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PayloadTooLarge
from ..explainers import Cost, Explainer, Params
from ..explainers.faithfulness import EvaluateSpec
from ..models import LoadedModel
from ..settings import Settings

Method = tuple[Explainer, Params]


@dataclass(frozen=True)
class RowCount:
    per_input: int  # rows per input over the request's methods and their faithfulness curves
    inputs: int
    driver: str | None = None  # the method parameter that scales them, for the error that names it

    @property
    def total(self) -> int:
        return self.per_input * self.inputs


def method_cost(
    loaded: LoadedModel, explainer: Explainer, params: Params, shape: tuple[int, ...] | None = None
) -> Cost:
    """Passes per input of the method on this model (Score-CAM's depend on its layer's channels)."""
    return explainer.cost_on(params, shape or loaded.input_shape, dict(loaded.layers), loaded.default_layer)


def count_rows(
    loaded: LoadedModel,
    methods: list[Method],
    inputs: int,
    evaluate: EvaluateSpec | None = None,
    shape: tuple[int, ...] | None = None,
) -> RowCount:
    costs = [method_cost(loaded, e, p, shape) for e, p in methods]
    per_input = sum(c.forward for c in costs) + (evaluate.rows_per_image() * len(methods) if evaluate else 0)
    return RowCount(per_input, inputs, next((c.driver for c in costs if c.driver), None))


def check_request(count: RowCount, settings: Settings, field: str, sets: int = 1) -> None:
    """413 when the request's rows (times `sets` of maps, for the sanity checks) are over
    max_passes_per_request; the error names what to lower."""
    passes = count.total * sets
    limit = settings.max_passes_per_request
    if passes <= limit:
        return
    what = f"{count.inputs} {field} x {count.per_input} model passes" + (f" x {sets} sets of maps" if sets > 1 else "")
    raise PayloadTooLarge(
        f"{what} = {passes} passes is over the {limit} limit (max_passes_per_request) by {passes - limit}; "
        f"send fewer {field}" + (f" or lower method.{count.driver}" if count.driver else ""),
        f"method.{count.driver}" if count.driver and sets == 1 else field,
    )
