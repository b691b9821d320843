"""The engine runner: requests share passes row by row, stay exact, and leave the device when abandoned."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import torch
import torchvision
from explaining import RunContext, explain

from service.core import plans
from service.engine.runner import BUDGET_SHARE, MAX_PASS_ROWS, EngineRunner, chunk_rows
from service.errors import InvalidParameter, Overloaded
from service.explainers import PixelSpace, default_registry
from service.metrics import Metrics
from service.models import ModelPool, load_config
from service.settings import Settings

REGISTRY = default_registry()
CASES = {
    "gradient": {},
    "input_x_gradient": {},
    "integrated_gradients": {"steps": 4},
    "smoothgrad": {"samples": 3, "seed": 7},
    "gradcam": {},
    "gradcam_pp": {},
    "occlusion": {"window": 16, "stride": 8},
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> ModelPool:
    folder: Path = tmp_path_factory.mktemp("runner")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), folder / "r18.pt")
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), folder / "other.pt")
    (folder / "models.toml").write_text(
        '[[models]]\nname = "r18"\narchitecture = "torchvision:resnet18"\nweights = "r18.pt"\n'
        "num_classes = 5\ninput_size = [32, 32]\n\n"
        '[[models]]\nname = "other"\narchitecture = "torchvision:resnet18"\nweights = "other.pt"\n'
        "num_classes = 3\ninput_size = [32, 32]\n"
    )
    return ModelPool(load_config(folder / "models.toml"), device="cpu")


@pytest.fixture(scope="module")
def loaded(pool):
    return pool.get("r18")


def method(name: str, **extra):
    return REGISTRY.parse({"name": name, **CASES.get(name, {}), **extra})


def alone(loaded, name: str, x, t, objective="logit"):
    """The method run by itself, synchronously: the reference every scheduled result must equal."""
    explainer, params = method(name)
    spec = loaded.spec
    ctx = RunContext(PixelSpace(spec.mean, spec.std), loaded.default_layer, objective=objective)
    return explain(explainer, loaded.module, x, t, params, ctx)


def record(into: list):
    return lambda done, total: into.append((done, total))


def assert_same(a, b):
    torch.testing.assert_close(a.attributions, b.attributions, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-4, atol=1e-5)
    assert torch.equal(a.targets, b.targets)
    for key in b.diagnostics:
        if key != "seed":
            torch.testing.assert_close(a.diagnostics[key], b.diagnostics[key], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_concurrent_requests_of_every_method_share_passes_and_stay_exact(loaded, chunk):
    metrics = Metrics()
    runner = EngineRunner(Settings(chunk_size=chunk), metrics)
    torch.manual_seed(1)
    jobs = [(name, torch.randn(n, 3, 32, 32), torch.tensor([-1, 2, 4][:n])) for name in CASES for n in (1, 2)]

    async def run_all():
        return await asyncio.gather(*[plans.explain(runner, loaded, [method(m)], x, t, "logit") for m, x, t in jobs])

    outs = asyncio.run(run_all())
    runner.close()
    for (name, x, t), (out,) in zip(jobs, outs, strict=True):
        assert_same(out, alone(loaded, name, x, t))
    sizes = metrics.registry.get_sample_value("saliency_chunk_rows_count", {"device": "cpu"})
    rows = sum(s.value for s in metrics.rows.collect()[0].samples if s.name.endswith("_total"))
    assert chunk == 1 or sizes < rows, "rows of different requests should have shared passes"


def test_several_methods_in_one_request_equal_the_single_method_results(loaded):
    torch.manual_seed(2)
    x, t = torch.randn(3, 3, 32, 32), torch.tensor([-1, 1, 3])
    names = list(CASES)
    runner = EngineRunner(Settings(chunk_size=5))
    outs = asyncio.run(plans.explain(runner, loaded, [method(m) for m in names], x, t, "probability"))
    runner.close()
    for name, out in zip(names, outs, strict=True):
        assert_same(out, alone(loaded, name, x, t, "probability"))


def test_gradient_and_cam_methods_together_cost_one_pass(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(), metrics)
    x = torch.randn(2, 3, 32, 32)
    names = ["gradient", "input_x_gradient", "gradcam", "gradcam_pp"]
    asyncio.run(plans.explain(runner, loaded, [method(m) for m in names], x, torch.tensor([-1, -1]), "logit"))
    assert 0 < metrics.registry.get_sample_value("saliency_device_busy_ratio", {"device": "cpu"}) <= 1
    assert metrics.registry.get_sample_value("saliency_engine_seconds_count", {"model": "r18"}) == 1
    runner.close()
    assert metrics.registry.get_sample_value("saliency_chunk_rows_count", {"device": "cpu"}) == 1
    assert metrics.registry.get_sample_value("saliency_rows_total", {"device": "cpu", "kind": "backward"}) == 2


def test_a_cheap_request_finishes_while_a_long_one_runs(loaded):
    runner = EngineRunner(Settings(chunk_size=8))
    heavy = method("integrated_gradients", steps=256)
    progress: list[tuple[int, int]] = []

    async def scenario():
        x, t = torch.randn(2, 3, 32, 32), torch.tensor([-1, -1])
        long = asyncio.ensure_future(plans.explain(runner, loaded, [heavy], x, t, "logit", record(progress)))
        while not progress:  # the long request is running
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        await plans.explain(
            runner, loaded, [method("gradient")], torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit"
        )
        cheap = time.perf_counter() - started
        at_cheap_done = progress[-1]
        await long
        return cheap, at_cheap_done

    cheap, (done, total) = asyncio.run(scenario())
    runner.close()
    assert done < total / 4, f"the cheap request waited for {done} of the long one's {total} rows"
    assert cheap < 2.0


def test_fairness_holds_across_two_models_on_one_device(pool):
    runner = EngineRunner(Settings(chunk_size=4))
    r18, other = pool.get("r18"), pool.get("other")
    progress: list[tuple[int, int]] = []

    async def scenario():
        long = asyncio.ensure_future(
            plans.explain(runner, r18, [method("occlusion", window=4, stride=2)], torch.randn(2, 3, 32, 32),
                           torch.tensor([-1, -1]), "logit", record(progress))
        )  # fmt: skip
        while not progress:
            await asyncio.sleep(0.001)
        (out,) = await plans.explain(
            runner, other, [method("gradcam")], torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit"
        )
        state = progress[-1]
        await long
        return out, state

    out, (done, total) = asyncio.run(scenario())
    runner.close()
    assert out.logits.shape == (1, 3)
    assert done < total / 4, "the other model's request must not wait for the whole occlusion"


def test_the_expensive_request_is_not_starved_by_a_stream_of_cheap_ones(loaded):
    runner = EngineRunner(Settings(chunk_size=4, scheduler_age_limit=2))
    progress: list[tuple[int, int]] = []

    async def scenario():
        # Forward-only occlusion rows cannot share the gradient requests' passes: only the age bound helps it.
        long = asyncio.ensure_future(
            plans.explain(runner, loaded, [method("occlusion", window=8, stride=8)], torch.randn(1, 3, 32, 32),
                           torch.tensor([-1]), "logit", record(progress))
        )  # fmt: skip
        while not long.done():
            await asyncio.gather(
                *[plans.explain(runner, loaded, [method("gradient")], torch.randn(1, 3, 32, 32), torch.tensor([-1]),
                                "logit") for _ in range(3)]
            )  # fmt: skip
        return await long

    (out,) = asyncio.run(asyncio.wait_for(scenario(), 60))
    runner.close()
    assert out.attributions.shape == (1, 3, 32, 32) and progress[-1][0] == progress[-1][1]


def test_an_abandoned_request_frees_the_device_within_one_chunk(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(chunk_size=4), metrics)
    progress: list[tuple[int, int]] = []

    def chunks() -> float:
        return metrics.registry.get_sample_value("saliency_chunk_rows_count", {"device": "cpu"}) or 0

    async def scenario():
        task = asyncio.ensure_future(
            plans.explain(runner, loaded, [method("integrated_gradients", steps=512)], torch.randn(1, 3, 32, 32),
                           torch.tensor([-1]), "logit", record(progress))
        )  # fmt: skip
        while len(progress) < 2:
            await asyncio.sleep(0.001)
        task.cancel()  # what a disconnect or a deadline does
        cancelled_at = chunks()
        await asyncio.sleep(0.5)
        return cancelled_at, chunks()

    at, later = asyncio.run(scenario())
    runner.close()
    assert later - at <= 1, "at most the chunk in flight may run after the cancellation"
    assert progress[-1][0] < progress[-1][1]
    assert metrics.registry.get_sample_value("saliency_cancellations_total", {"model": "r18"}) == 1
    assert metrics.registry.get_sample_value("saliency_queue_rows", {"device": "cpu"}) == 0
    assert metrics.registry.get_sample_value("saliency_engine_requests_in_flight") == 0


def test_admission_counts_rows_and_retry_after_follows_the_measured_rate(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(max_queue_rows=300, chunk_size=8), metrics)

    async def scenario():
        busy = asyncio.ensure_future(
            plans.explain(runner, loaded, [method("integrated_gradients", steps=256)], torch.randn(1, 3, 32, 32),
                           torch.tensor([-1]), "logit")
        )  # fmt: skip
        await asyncio.sleep(0.05)
        assert metrics.registry.get_sample_value("saliency_queue_rows", {"device": "cpu"}) == 258
        with pytest.raises(Overloaded) as info:  # 258 + 2 * 22 rows > 300
            await plans.explain(runner, loaded, [method("smoothgrad", samples=21)], torch.randn(2, 3, 32, 32),
                                 torch.tensor([-1, -1]), "logit")  # fmt: skip
        assert "rows" in info.value.message and int(info.value.headers["Retry-After"]) >= 1
        (ok,) = await plans.explain(
            runner, loaded, [method("gradient")], torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit"
        )
        await busy
        return ok

    assert asyncio.run(scenario()).attributions.shape == (1, 3, 32, 32)
    runner.close()


def test_a_plan_that_fails_fails_its_request_only(loaded):
    runner = EngineRunner(Settings())

    async def scenario():
        return await asyncio.gather(
            plans.explain(
                runner, loaded, [method("gradcam", layer="fc")], torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit"
            ),
            plans.explain(runner, loaded, [method("gradient")], torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit"),
            return_exceptions=True,
        )

    bad, good = asyncio.run(scenario())
    runner.close()
    assert isinstance(bad, InvalidParameter) and bad.field == "method.layer"
    assert good[0].attributions.shape == (1, 3, 32, 32)


def test_chunk_rows_follow_the_memory_budget(loaded):
    assert chunk_rows(loaded, Settings(chunk_size=32)) == 32
    # The rows may fill BUDGET_SHARE of the budget; the rest is for what a row's measurement does not see.
    by_budget = int(Settings().memory_budget_bytes * BUDGET_SHARE) // loaded.row_bytes
    assert chunk_rows(loaded, Settings()) == min(MAX_PASS_ROWS, by_budget), "unset: the budget bounds it, time sizes it"
    tight = Settings(chunk_size=32, memory_budget_bytes=max(2**20, loaded.row_bytes * 3))
    assert chunk_rows(loaded, tight) == int(max(2**20, loaded.row_bytes * 3) * BUDGET_SHARE) // loaded.row_bytes
    assert chunk_rows(loaded, Settings(chunk_size=32, memory_budget_bytes=2**20)) >= 1
    # Rows that capture attention take more: fewer of them fit (0.9 x 12 rows' bytes, 3 rows' bytes each).
    budget = Settings(memory_budget_bytes=loaded.row_bytes * 12)
    assert chunk_rows(loaded, budget, extra_row_bytes=loaded.row_bytes * 2) == 3


def test_predict_shares_the_scheduler_and_matches_a_plain_forward(loaded):
    runner = EngineRunner(Settings(chunk_size=2))
    xs = [torch.randn(n, 3, 32, 32) for n in (1, 3)]

    async def run_all():
        return await asyncio.gather(*[plans.predict(runner, loaded, x) for x in xs])

    outs = asyncio.run(run_all())
    runner.close()
    with torch.inference_mode():
        for x, out in zip(xs, outs, strict=True):
            torch.testing.assert_close(out, loaded.module(x), rtol=1e-4, atol=1e-5)
