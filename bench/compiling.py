"""What `compile=True` (SALIENCY_COMPILE) buys and costs on this device: information rows, one model.

Two servers of resnet18 at `compile_size`, the same in all but `compile`: the gradient explain request of the
overhead benchmark on each, alternating; the raw fwd+bwd of the server's compiled module against its eager
prepared (folded) one, on the same model object; and the load time each server's model took
(`LoadedModel.load_seconds`: compiling and warming the compiled passes up happen at load; the eager load is
timed again here, the better of two). The first compile
runs with an empty inductor cache (TORCHINDUCTOR_CACHE_DIR set to a fresh folder), as on a fresh host; a
second load with that cache filled shows what a restart costs when the cache is kept.

The compiled server gets a looser `prepare_tolerance` (LOOSE) so that its compiled passes are served and can be
timed; whether the default tolerance accepts them is checked separately (`prepare.Checker`, the load's own
check) and shown in the notes. Runs last: the compiler's state stays in the process.
"""

from __future__ import annotations

import gc
import os
import time
from contextlib import ExitStack
from functools import partial

import httpx
import torch

from service.models.prepare import Checker, PrepareOptions

from .common import (
    Context,
    Report,
    Row,
    Served,
    fwd_bwd,
    load_model,
    median,
    model_input,
    timed,
    user_model,
    write_config,
)
from .overhead import explain_body, post

LOOSE = 0.05  # prepare_tolerance of the compiled server


def default_check(served: Served) -> str:
    """What the load's check says of the compiled module at the default tolerance (the pool's probe)."""
    loaded = served.loaded
    spec = loaded.spec
    probe = torch.randn((2, spec.channels, *spec.input_size), generator=torch.Generator().manual_seed(0))
    check = Checker(user_model(loaded), probe.to(loaded.device), PrepareOptions().tolerance)
    why = check(loaded.prepared.compiled)
    return "accepted" if why is None else f"rejected: the compiled model's {why}"


def run(ctx: Context) -> Report:
    plan = ctx.plan
    config = write_config(ctx.folder, "resnet18", plan.compile_size)
    report = Report()
    eager = ctx.servers.get(config, plan.device, compile=False)  # whatever SALIENCY_COMPILE says
    # The load without compile, timed afresh: the server's own load may have been this process's first (imports,
    # first passes), which would flatter compile.
    plain = min(load_model(config, plan.device, compile=False)[0].load_seconds for _ in range(2))
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(ctx.folder / "inductor")  # empty: the first compile is cold
    started = time.perf_counter()
    compiled = ctx.servers.get(config, plan.device, compile=True, prepare_tolerance=LOOSE)
    startup = time.perf_counter() - started
    prepared = compiled.loaded.prepared
    where = f"resnet18 {plan.compile_size}px"
    report.rows.append(
        Row(
            "compile: model load, compile=True / False",
            compiled.loaded.load_seconds,
            plain,
            "s",
            None,
            f"{where}, empty inductor cache; warm-up batch sizes {list(compiled_sizes(compiled))}; server start "
            f"{startup:.0f} s",
        )
    )
    report.notes.append(f"compile: the compiled server's preparation: {'; '.join(prepared.notes)}")
    if prepared.compiled is None:  # no compiler, an unsupported op: the service serves eager
        report.notes.append("compile: torch.compile failed here, so there is nothing compiled to time")
        return report
    default = PrepareOptions().tolerance
    report.notes.append(f"compile: at the default prepare_tolerance ({default:g}) the check {default_check(compiled)}")

    # The engine: fwd+bwd of the compiled module against the eager prepared one and the user's, same object.
    x = model_input(compiled.loaded)
    modules = {"compiled": prepared.compiled, "eager": prepared.module, "unprepared": prepared.original}
    raw: dict[str, list[float]] = {name: [] for name in modules}
    for module in modules.values():
        fwd_bwd(module, x)
    for i in range(plan.compile_repeats):
        for name in modules if i % 2 == 0 else list(modules)[::-1]:
            raw[name].append(timed(partial(fwd_bwd, modules[name], x), plan.device))
    fb = {name: median(values) * 1000 for name, values in raw.items()}
    report.rows.append(
        Row(
            "compile: engine fwd+bwd, compiled / eager prepared",
            fb["compiled"],
            fb["eager"],
            "ms",
            None,
            f"{where}, batch 1, median of {plan.compile_repeats}; the unprepared model {fb['unprepared']:.1f} ms",
        )
    )

    # End to end: the overhead benchmark's request (JPEG, gradient, float16 + overlay) on each server.
    body = explain_body(plan.compile_size)
    http: dict[str, list[float]] = {"compiled": [], "eager": []}
    with ExitStack() as stack:
        clients = {
            name: stack.enter_context(httpx.Client(base_url=served.url, timeout=120))
            for name, served in (("compiled", compiled), ("eager", eager))
        }
        for client in clients.values():
            for _ in range(3):
                post(client, body)
        for i in range(plan.compile_repeats):
            for name in clients if i % 2 == 0 else list(clients)[::-1]:
                started = time.perf_counter()
                post(clients[name], body)
                http[name].append(time.perf_counter() - started)
    report.rows.append(
        Row(
            "compile: gradient explain e2e, compiled / eager",
            median(http["compiled"]) * 1000,
            median(http["eager"]) * 1000,
            "ms",
            None,
            f"{where}, float16 + overlay, median of {plan.compile_repeats}",
        )
    )

    # A restart that keeps the inductor cache: the same load again, in this process, with the cache now filled.
    loaded, _ = load_model(config, plan.device, compile=True, prepare_tolerance=LOOSE)
    report.rows.append(
        Row(
            "compile: model load, filled inductor cache / no compile",
            loaded.load_seconds,
            plain,
            "s",
            None,
            f"{where}; a restart that keeps TORCHINDUCTOR_CACHE_DIR",
        )
    )
    del loaded
    gc.collect()
    return report


def compiled_sizes(served: Served) -> tuple[int, ...]:
    from service.core.services import prepare_options

    return prepare_options(served.settings).compile_sizes
