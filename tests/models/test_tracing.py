"""torch.fx patches nn.Module.__call__ for the whole process while it traces: other threads' passes and
other traces must not notice (a model loading while another serves)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import fx, nn

from service.demo.net import shapes_cnn
from service.models.tracing import trace


def passes_during(tracing, rounds: int = 40) -> list[BaseException]:
    """Runs forward passes of one model on a thread while `tracing` runs on this one; the passes' errors."""
    model = shapes_cnn().eval()
    x = torch.randn(1, 3, 32, 32)
    errors: list[BaseException] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                with torch.no_grad():
                    model(x)
            except BaseException as exc:  # noqa: BLE001 - what the race raises is the finding
                errors.append(exc)
                return

    worker = threading.Thread(target=serve)
    worker.start()
    try:
        for _ in range(rounds):
            tracing()
    finally:
        stop.set()
        worker.join()
    return errors


def test_plain_symbolic_trace_breaks_other_threads_passes():
    """The hazard itself, so that this file fails if torch.fx stops patching globally (then the lock can go)."""
    other = shapes_cnn()
    errors = passes_during(lambda: fx.symbolic_trace(other))
    assert errors and "not installed as a submodule" in str(errors[0])


def test_our_trace_leaves_other_threads_passes_alone():
    other = shapes_cnn()
    expected = [n.op for n in fx.symbolic_trace(other).graph.nodes]
    graphs: list[list[str]] = []
    errors = passes_during(lambda: graphs.append([n.op for n in trace(other).nodes]))
    assert errors == []
    assert graphs and all(g == expected for g in graphs)


def test_traces_at_once_take_turns_and_restore_the_module_call():
    original = nn.Module.__call__
    models = [shapes_cnn() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        graphs = list(pool.map(lambda m: [str(n.target) for n in trace(m).nodes], models * 5))
    assert all(g == graphs[0] for g in graphs)
    assert nn.Module.__call__ is original
