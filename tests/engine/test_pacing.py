"""Pass size from time (engine/pacing.py): the target over a moving per-row estimate, within the cap; and on
a real device worker, a request alone gets large passes while a cheap one still waits about one pass."""

from __future__ import annotations

import asyncio
import time

import pytest
import torch
import torchvision

from service.core import plans
from service.engine.pacing import Pacer
from service.engine.runner import EngineRunner
from service.explainers import default_registry
from service.metrics import Metrics
from service.models import ModelPool, load_config
from service.settings import Settings


def test_the_first_pass_of_a_kind_has_the_first_rows_then_the_target_decides():
    pacer = Pacer(target_ms=100, first_rows=8)
    assert pacer.rows("ig", cap=64) == 8
    pacer.observe("ig", rows=8, seconds=0.040)  # 5 ms a row
    assert pacer.rows("ig", cap=64) == 20
    assert pacer.rows("ig", cap=12) == 12, "the memory cap bounds it"
    assert pacer.rows("other", cap=64) == 8, "each kind of pass has its own estimate"


def test_the_estimate_moves_with_the_passes_run_small_ones_barely():
    pacer = Pacer(target_ms=100, first_rows=8, smoothing=0.5)
    pacer.observe("k", 8, 0.080)  # 10 ms a row
    pacer.observe("k", 8, 0.040)  # 5 ms: a full pass moves it half way
    assert pacer.seconds_per_row("k") == pytest.approx(0.0075)
    pacer.observe("k", 1, 0.060)  # a one-row pass is mostly overhead: an eighth of the weight
    assert pacer.seconds_per_row("k") == pytest.approx(0.0075 + 0.5 / 8 * (0.060 - 0.0075))
    assert pacer.rows("k", cap=1000) == int(0.1 / pacer.seconds_per_row("k"))


def test_a_slow_kind_of_pass_gets_one_row_never_zero():
    pacer = Pacer(target_ms=10, first_rows=4)
    pacer.observe("slow", 4, 4.0)
    assert pacer.rows("slow", cap=64) == 1


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pacing")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), folder / "r18.pt")
    (folder / "models.toml").write_text(
        '[[models]]\nname = "r18"\narchitecture = "torchvision:resnet18"\nweights = "r18.pt"\n'
        "num_classes = 5\ninput_size = [32, 32]\n"
    )
    return ModelPool(load_config(folder / "models.toml"), device="cpu").get("r18")


def chunk_sizes(metrics: Metrics) -> tuple[float, float]:
    """(passes, rows) the device ran."""
    passes = metrics.registry.get_sample_value("saliency_chunk_rows_count", {"device": "cpu"})
    rows = metrics.registry.get_sample_value("saliency_chunk_rows_sum", {"device": "cpu"})
    return passes, rows


def test_a_request_alone_runs_in_passes_sized_by_the_target(loaded):
    heavy = default_registry().parse({"name": "integrated_gradients", "steps": 254})  # 256 rows
    sizes = {}
    for target in (400.0, 20.0):
        metrics = Metrics()
        runner = EngineRunner(Settings(pass_target_ms=target), metrics)
        x, t = torch.randn(1, 3, 32, 32), torch.tensor([-1])
        asyncio.run(plans.explain(runner, loaded, [heavy], x, t, "logit"))
        runner.close()
        passes, rows = chunk_sizes(metrics)
        assert rows == 256
        sizes[target] = rows / passes
    assert sizes[400.0] > 16, f"a request alone should get passes larger than the old 8 rows: {sizes}"
    assert sizes[20.0] < sizes[400.0] / 2, sizes


def test_a_cheap_request_still_waits_about_one_pass(loaded):
    runner = EngineRunner(Settings(pass_target_ms=100.0))
    heavy = default_registry().parse({"name": "integrated_gradients", "steps": 1022})
    cheap = default_registry().parse("gradient")
    progress: list[tuple[int, int]] = []

    async def scenario() -> float:
        x, t = torch.randn(1, 3, 32, 32), torch.tensor([-1])
        long = asyncio.ensure_future(
            plans.explain(runner, loaded, [heavy], x, t, "logit", lambda d, n: progress.append((d, n)))
        )
        while len(progress) < 3:  # the estimate has settled over a few passes
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        await plans.explain(runner, loaded, [cheap], x, t, "logit")
        waited = time.perf_counter() - started
        await long
        return waited

    waited = asyncio.run(scenario())
    runner.close()
    assert waited < 1.0, f"the cheap request waited {waited:.2f} s behind 100 ms passes"
