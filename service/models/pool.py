"""The model pool: loads each configured model once, keeps the most recently used ones resident.

Thread-safe: request threads call `get` concurrently; a model is loaded by exactly one of them while the
others wait for it. A model that fails to load is marked failed with a short reason (details go to the log),
the rest keep working, and the load is tried again after a growing cool-down (see failures.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ModelUnavailable, UnknownModel
from . import build, loader
from .attention import AttentionInfo
from .failures import Backoff, Failure
from .layouts import Layout
from .prepare import Prepared, PrepareOptions
from .rowcost import marginal_row_bytes
from .spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    spec: ModelSpec
    module: nn.Module
    device: torch.device
    labels: list[str] | None
    layers: list[tuple[str, tuple[int, ...]]]  # CAM layers with their maps' (C, h, w), in finishing order
    default_layer: str | None
    param_bytes: int
    load_seconds: float
    row_bytes: int = 0  # measured memory of one more row in a forward+backward pass, for the chunk budget
    prepared: Prepared | None = None  # the folded / compiled variants and the unprepared model
    tokenizer: Any = None  # text models: their fast tokenizer
    relu_issue: str | None = None  # why guided backprop cannot run on this model (None: it can)
    layouts: dict[str, Layout] = field(default_factory=dict)  # CAM layer -> how its output lays out maps
    refused_layers: dict[str, str] = field(default_factory=dict)  # layer -> why its layout is unknown
    attention: AttentionInfo | None = None  # the attention the attention methods read
    attention_issue: str | None = None  # why they cannot, where attention is None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input that costs are counted on: (H, W) for images, (tokens,) for texts."""
        return (self.spec.max_length,) if self.spec.kind in ("text", "causal_lm") else self.spec.input_size

    @property
    def boxes_per_image(self) -> int:
        """Detection models: the most boxes one image's explanation explains (1 for classifiers)."""
        return self.spec.max_detections if self.spec.kind == "detection" else 1

    def module_for(self, layers: set[str]) -> nn.Module:
        """The module a pass that hooks `layers` runs on (see prepare.Prepared.for_layers)."""
        return self.module if self.prepared is None else self.prepared.for_layers(layers)


def resolve_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class ModelPool:
    def __init__(
        self,
        specs: list[ModelSpec],
        device: str = "auto",
        max_loaded: int = 8,
        max_param_bytes: int | None = None,
        on_load: Callable[[LoadedModel], None] | None = None,
        prepare: PrepareOptions | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.prepare = prepare or PrepareOptions()
        self.backoff = backoff or Backoff()
        self._clock = clock
        self.specs = {s.name: s for s in specs}
        self.device = resolve_device(device)
        self.max_loaded = max_loaded
        self.max_param_bytes = max_param_bytes
        self._on_load = on_load
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._failed: dict[str, Failure] = {}
        self._ever_loaded: set[str] = set()
        self._lock = threading.Lock()
        self._load_locks = {name: threading.Lock() for name in self.specs}

    def spec(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownModel(f"unknown model {name!r}; available: {', '.join(self.specs)}", "model") from None

    def state(self, name: str) -> tuple[str, str | None]:
        """("loaded" | "not_loaded" | "failed", reason)."""
        self.spec(name)
        with self._lock:
            if name in self._failed:
                return "failed", self._failed[name].reason
            return ("loaded" if name in self._loaded else "not_loaded"), None

    def peek(self, name: str) -> LoadedModel | None:
        with self._lock:
            return self._loaded.get(name)

    def get(self, name: str) -> LoadedModel:
        """The loaded model, loading it first if needed (blocking: call from a worker thread)."""
        self.spec(name)
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
        with self._load_locks[name]:
            with self._lock:  # another thread may have finished loading while we waited
                if name in self._loaded:
                    self._loaded.move_to_end(name)
                    return self._loaded[name]
                failure = self._failed.get(name)
                if failure is not None and failure.wait(now := self._clock()) > 0:
                    raise ModelUnavailable(
                        f"model {name!r} failed to load: {failure.reason}", "model", failure.retry_after_header(now)
                    )
            try:
                model = self._load(self.specs[name])
            except Exception as exc:  # any failure to load is the model's state, never the server's crash
                known = isinstance(exc, loader.ModelLoadError)
                reason = str(exc) if known else "unexpected error while loading (see the server log)"
                with self._lock:
                    failure = self._failed[name] = self.backoff.next(failure, reason, self._clock())
                log.error(
                    "model %s failed to load (attempt %d, next try in %.0f s): %s",
                    name,
                    failure.attempts,
                    failure.wait(self._clock()),
                    exc.detail if isinstance(exc, loader.ModelLoadError) else exc,
                    exc_info=not known,
                )
                raise ModelUnavailable(
                    f"model {name!r} failed to load: {reason}", "model", failure.retry_after_header(self._clock())
                ) from None
            with self._lock:
                self._failed.pop(name, None)
                self._loaded[name] = model
                self._ever_loaded.add(name)
                self._evict(keep=name)
        if self._on_load is not None:
            self._on_load(model)
        return model

    def preload(self) -> None:
        for spec in self.specs.values():
            if spec.preload:
                try:
                    self.get(spec.name)
                except ModelUnavailable:
                    pass  # recorded as failed; readiness reports it

    def retry_due(self) -> None:
        """Tries again the failed preload models whose cool-down is over (lazy ones retry on their next request)."""
        with self._lock:
            now = self._clock()
            due = [n for n, f in self._failed.items() if self.specs[n].preload and f.wait(now) == 0]
        for name in due:
            try:
                self.get(name)
            except ModelUnavailable:
                pass  # recorded with a longer cool-down

    def failures(self) -> dict[str, str]:
        """Preload models that block readiness: failed, or not loaded yet. An evicted model is still ready
        (it reloads on its next request); a lazy model that fails only shows in its own state."""
        with self._lock:
            out = {}
            for name, spec in self.specs.items():
                if not spec.preload:
                    continue
                if name in self._failed:
                    out[name] = self._failed[name].reason
                elif name not in self._ever_loaded:
                    out[name] = "not loaded yet"
            return out

    def _load(self, spec: ModelSpec) -> LoadedModel:
        # A caller inside inference_mode would otherwise create inference-tensor weights that no
        # explanation can backpropagate through.
        with torch.inference_mode(False):
            return self._build(spec)

    def _build(self, spec: ModelSpec) -> LoadedModel:
        started = time.perf_counter()
        if spec.kind == "text":
            made = build.text(spec, self.device)
        elif spec.kind == "detection":
            made = build.detector(spec, self.device)
        elif spec.kind == "causal_lm":
            made = build.causal_lm(spec, self.device)
        else:
            made = build.image(spec, self.device, self.prepare)
        # The unfolded model stays resident beside the folded one (for hooks on folded convolutions).
        params = {id(p): p for m in (made.prepared.original, made.prepared.module) for p in m.parameters()}
        loaded = LoadedModel(
            spec,
            made.prepared.module,
            self.device,
            made.labels,
            made.table.shapes,
            made.table.default,
            sum(p.numel() * p.element_size() for p in params.values()),
            time.perf_counter() - started,
            marginal_row_bytes(made.prepared.module, made.example),
            made.prepared,
            made.tokenizer,
            made.relu_issue,
            made.table.layouts,
            made.table.refused,
            made.attention if isinstance(made.attention, AttentionInfo) else None,
            made.attention if isinstance(made.attention, str) else None,
        )
        log.info("loaded model %s on %s in %.2f s", spec.name, self.device, loaded.load_seconds)
        return loaded

    def _evict(self, keep: str) -> None:
        def over() -> bool:
            total = sum(m.param_bytes for m in self._loaded.values())
            too_many = len(self._loaded) > self.max_loaded
            return too_many or (self.max_param_bytes is not None and total > self.max_param_bytes)

        while len(self._loaded) > 1 and over():
            oldest = next(name for name in self._loaded if name != keep)
            log.info("evicting model %s (least recently used)", oldest)
            del self._loaded[oldest]
