"""Prepares a loaded model for explanation work, once, at load: BatchNorm folding, channels_last, torch.compile.

A user's own process runs the model as trained; the service can afford to rewrite it once. Every rewrite is
checked on a probe input (logits and input gradients) and dropped, with the reason logged and shown in the
model's info, when it is further from the exact result than float rounding explains: a faster model that
explains differently is never served. "Exact" is the unprepared model in float64, because float32 rounding
alone moves a deep random network's input gradients by several percent (resnet50: 4 %); a rewrite may be as
far from it as the unprepared float32 model is, plus the tolerance.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import Tensor, fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .tracing import trace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareOptions:
    fold_batchnorm: bool = True
    channels_last: bool = False
    compile: bool = False
    compile_sizes: tuple[int, ...] = (1, 8)  # batch sizes to warm the compiled passes up for
    tolerance: float = 1e-3  # difference allowed beyond float rounding, relative to the largest magnitude


@dataclass
class Prepared:
    module: nn.Module  # what passes run on: eager, so layer hooks work
    original: nn.Module  # the unprepared model: for passes that hook a folded convolution's own output
    folded: frozenset[str] = frozenset()  # convolutions that absorbed a BatchNorm: their outputs changed
    compiled: nn.Module | None = None  # `module` under torch.compile, for passes without layer hooks
    notes: list[str] = field(default_factory=list)  # what was done or dropped, and why

    def for_layers(self, layers: set[str]) -> nn.Module:
        """The module a pass hooking `layers` runs on."""
        if layers & self.folded:
            return self.original
        if layers or self.compiled is None:
            return self.module
        return self.compiled


def prepare(module: nn.Module, probe: Tensor, options: PrepareOptions) -> Prepared:
    """`module` (eval mode, on its device) ready to serve; `probe` is a (N, C, H, W) input to check against."""
    if options.channels_last:
        module = module.to(memory_format=torch.channels_last)
    out = Prepared(module, module)
    if options.fold_batchnorm or options.compile:
        check = Checker(module, probe, options.tolerance)
        if options.fold_batchnorm:
            fold_checked(out, check)
        if options.compile:
            compile_checked(out, check, options.compile_sizes)
    for note in out.notes:
        log.info("prepare: %s", note)
    return out


def fold_checked(out: Prepared, check: Checker) -> None:
    try:
        folded, names = fold_batchnorm(out.original)
    except Exception as exc:  # tracing fails on data-dependent control flow, TorchScript, ...
        out.notes.append(f"BatchNorm not folded: the model cannot be traced by torch.fx ({type(exc).__name__})")
        return
    if not names:
        out.notes.append("BatchNorm not folded: no eval-mode BatchNorm2d directly after a Conv2d")
        return
    why = check(folded)
    if why is not None:
        out.notes.append(f"BatchNorm not folded: the folded model's {why}")
        return
    out.module, out.folded = folded, frozenset(names)
    out.notes.append(f"folded {len(names)} BatchNorm layers into their convolutions")


def fold_batchnorm(module: nn.Module) -> tuple[nn.Module, list[str]]:
    """A copy of `module` in which each eval-mode BatchNorm2d that alone reads a Conv2d's output is folded
    into that convolution and replaced by an identity. The module tree and names stay, so hooks and CAM
    layers work as before; only the folded convolutions' own outputs change. Returns the folded conv names."""
    graph = trace(module)
    modules = dict(module.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    pairs = []
    for node in graph.nodes:
        bn = modules.get(str(node.target)) if node.op == "call_module" else None
        if not isinstance(bn, nn.BatchNorm2d) or bn.training or bn.running_mean is None or len(node.args) != 1:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_module" or len(source.users) != 1:
            continue
        conv = modules.get(str(source.target))
        # A module called twice would be folded for both calls: only single-use pairs are safe.
        if type(conv) is nn.Conv2d and calls[str(source.target)] == 1 and calls[str(node.target)] == 1:
            pairs.append((str(source.target), str(node.target)))
    if not pairs:
        return module, []
    folded = copy.deepcopy(module)
    for conv_name, bn_name in pairs:
        conv = folded.get_submodule(conv_name)
        bn = folded.get_submodule(bn_name)
        assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
        folded.set_submodule(conv_name, fuse_conv_bn_eval(conv, bn))
        folded.set_submodule(bn_name, nn.Identity())
    return folded.eval(), [conv for conv, _ in pairs]


def compile_checked(out: Prepared, check: Checker, sizes: tuple[int, ...]) -> None:
    try:
        compiled = cast(nn.Module, torch.compile(out.module, dynamic=True))  # an OptimizedModule
        for size in sizes:  # compile now, not on a client's first request
            x = check.probe[:1].expand(size, *check.probe.shape[1:]).contiguous()
            with torch.inference_mode():
                compiled(x)
            logits_and_grad(compiled, x)
        why = check(compiled)
    except Exception as exc:  # no compiler, an unsupported op, ...: eager still works
        out.notes.append(f"not compiled, eager instead: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    if why is not None:
        out.notes.append(f"not compiled, eager instead: the compiled model's {why}")
        return
    out.compiled = compiled
    out.notes.append(f"compiled with torch.compile, warmed up for batch sizes {list(sizes)}")


class Checker:
    """Compares a rewritten model with the exact result on the probe, allowing what float32 rounding does."""

    def __init__(self, module: nn.Module, probe: Tensor, tolerance: float):
        self.module, self.probe, self.tolerance = module, probe, tolerance
        self.reference: tuple[tuple[Tensor, Tensor], tuple[float, float]] | None = None

    def __call__(self, candidate: nn.Module) -> str | None:
        """None when `candidate` is as good as the unprepared model; else what differs, and by how much."""
        if self.reference is None:  # on first use: a model with nothing to fold (a ViT) pays nothing
            exact = logits_and_grad(copy.deepcopy(self.module).double(), self.probe.double())
            self.reference = exact, errors(exact, logits_and_grad(self.module, self.probe))
        exact, rounding = self.reference
        got = errors(exact, logits_and_grad(candidate, self.probe))
        for name, error, rounded in zip(("logits", "input gradients"), got, rounding, strict=True):
            allowed = self.tolerance + 2 * rounded
            if not error <= allowed:  # NaN fails too
                return f"{name} differ from the exact ones by {error:.1e} of their largest (allowed {allowed:.1e})"
        return None


def errors(exact: tuple[Tensor, Tensor], got: tuple[Tensor, Tensor]) -> tuple[float, float]:
    """Largest difference of logits and of input gradients, each relative to its largest exact value."""
    out = []
    for a, b in zip(exact, got, strict=True):
        out.append(((a - b.double()).abs().max() / (a.abs().max() or 1.0)).item())
    return out[0], out[1]


def logits_and_grad(module: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """Logits and the input gradient of a fixed random mix of them, so every class's path is checked."""
    with torch.enable_grad():
        xr = x.detach().clone().requires_grad_(True)
        logits = module(xr)
        mix = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0)).to(logits)
        (grad,) = torch.autograd.grad((logits * mix).sum(), xr)
    return logits.detach(), grad
