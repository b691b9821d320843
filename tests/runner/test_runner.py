"""Dynamic batching: gathering, splitting, equality with unbatched runs, queue limits, cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
import torchvision

from service.errors import Overloaded
from service.explainers import default_registry
from service.metrics import Metrics
from service.models import ModelPool, load_config
from service.runner import EngineRunner, chunk_rows, run_explain
from service.settings import Settings


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder: Path = tmp_path_factory.mktemp("runner")
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), folder / "r18.pt")
    (folder / "models.toml").write_text(
        '[[models]]\nname = "r18"\narchitecture = "torchvision:resnet18"\nweights = "r18.pt"\n'
        "num_classes = 5\ninput_size = [32, 32]\n"
    )
    return ModelPool(load_config(folder / "models.toml"), device="cpu").get("r18")


def batch_sizes(metrics: Metrics) -> list[float]:
    samples = metrics.batch_size.collect()[0].samples
    return [s.value for s in samples if s.name.endswith("_count") or s.name.endswith("_sum")]


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "gradcam", "smoothgrad"])
def test_concurrent_requests_share_a_batch_and_match_unbatched_results(loaded, method):
    settings = Settings(max_batch_size=8, max_batch_delay_ms=200, chunk_size=4)
    metrics = Metrics()
    runner = EngineRunner(settings, metrics)
    explainer, params = default_registry().parse(
        {
            "name": method,
            **({"steps": 4} if method == "integrated_gradients" else {}),
            **({"samples": 3, "seed": 7} if method == "smoothgrad" else {}),
        }
    )
    torch.manual_seed(1)
    inputs = [torch.randn(n, 3, 32, 32) for n in (1, 2, 1, 3)]
    targets = [torch.tensor([-1]), torch.tensor([2, -1]), torch.tensor([4]), torch.tensor([0, 1, -1])]

    async def run_all():
        return await asyncio.gather(
            *[runner.explain(loaded, explainer, params, x, t, "logit") for x, t in zip(inputs, targets, strict=True)]
        )

    outs = asyncio.run(run_all())
    runner.close()
    count, total = batch_sizes(metrics)
    assert (count, total) == (1.0, 7.0), "all four requests should have run as one batch of 7 images"
    for x, t, out in zip(inputs, targets, outs, strict=True):
        alone = run_explain(loaded, explainer, params, x, t, "logit", settings)
        assert out.attributions.shape == alone.attributions.shape
        torch.testing.assert_close(out.attributions, alone.attributions, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(out.targets, alone.targets)
        explicit = t >= 0
        assert torch.equal(out.targets[explicit], t[explicit])


def test_batches_respect_max_batch_size(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(max_batch_size=2, max_batch_delay_ms=100), metrics)
    explainer, params = default_registry().parse("gradient")

    async def run_all():
        return await asyncio.gather(
            *[
                runner.explain(loaded, explainer, params, torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit")
                for _ in range(5)
            ]
        )

    outs = asyncio.run(run_all())
    runner.close()
    assert len(outs) == 5
    count, total = batch_sizes(metrics)
    assert total == 5 and count == 3  # 2 + 2 + 1


def test_full_queue_answers_overloaded_with_retry_after(loaded):
    runner = EngineRunner(Settings(max_queue=3, max_batch_delay_ms=2000, max_batch_size=64))
    explainer, params = default_registry().parse("gradient")
    slow, slow_params = default_registry().parse({"name": "integrated_gradients", "steps": 64})

    async def run_all():
        busy = asyncio.ensure_future(  # occupies the device, so the next request queues
            runner.explain(loaded, slow, slow_params, torch.randn(2, 3, 32, 32), torch.full((2,), -1), "logit")
        )
        await asyncio.sleep(0.01)
        first = asyncio.ensure_future(
            runner.explain(loaded, explainer, params, torch.randn(3, 3, 32, 32), torch.full((3,), -1), "logit")
        )
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as info:
            await runner.explain(loaded, explainer, params, torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit")
        assert info.value.status == 503 and info.value.headers["Retry-After"]
        await busy
        return await first

    assert asyncio.run(run_all()).attributions.shape == (3, 3, 32, 32)
    runner.close()


def test_cancelled_request_leaves_the_queue(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(max_batch_delay_ms=2000, max_batch_size=64), metrics)
    explainer, params = default_registry().parse("gradient")
    slow, slow_params = default_registry().parse({"name": "integrated_gradients", "steps": 64})

    async def scenario():
        # Keep the device busy so that the next requests wait in the queue for companions.
        busy = asyncio.ensure_future(
            runner.explain(loaded, slow, slow_params, torch.randn(4, 3, 32, 32), torch.full((4,), -1), "logit")
        )
        await asyncio.sleep(0.01)
        gone = asyncio.ensure_future(
            runner.explain(loaded, explainer, params, torch.randn(2, 3, 32, 32), torch.full((2,), -1), "logit")
        )
        stays = asyncio.ensure_future(
            runner.explain(loaded, explainer, params, torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit")
        )
        await asyncio.sleep(0.02)
        assert runner._queued["r18"] == 3 == gauge()
        gone.cancel()  # what the API does when the client disconnects
        await asyncio.sleep(0)
        # The gauge follows at once: the autoscaler must not see queued work that left.
        assert runner._queued["r18"] == 1 == gauge()
        stays.cancel()
        await asyncio.sleep(0)
        assert gauge() == 0
        await busy

    def gauge() -> float:
        return metrics.registry.get_sample_value("saliency_queue_depth", {"model": "r18"})

    asyncio.run(scenario())
    runner.close()
    assert gauge() == 0
    samples = {s.labels["method"]: s.value for s in metrics.batch_size.collect()[0].samples if s.name.endswith("_sum")}
    assert "gradient" not in samples, "the cancelled requests' images must not run"


def test_a_lone_request_on_an_idle_device_does_not_wait_for_the_batch_window(loaded):
    runner = EngineRunner(Settings(max_batch_delay_ms=5000))
    explainer, params = default_registry().parse("gradient")

    async def one():
        started = asyncio.get_running_loop().time()
        await runner.explain(loaded, explainer, params, torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit")
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(one()) < 2.5
    runner.close()


def test_batching_off_runs_each_request_alone(loaded):
    metrics = Metrics()
    runner = EngineRunner(Settings(batching=False), metrics)
    explainer, params = default_registry().parse("gradient")

    async def run_all():
        return await asyncio.gather(
            *[
                runner.explain(loaded, explainer, params, torch.randn(1, 3, 32, 32), torch.tensor([-1]), "logit")
                for _ in range(3)
            ]
        )

    assert len(asyncio.run(run_all())) == 3
    runner.close()
    assert batch_sizes(metrics) == []  # nothing went through the batcher


def test_chunk_rows_follow_the_memory_budget(loaded):
    assert chunk_rows(loaded, Settings(chunk_size=32)) == 32
    tight = Settings(chunk_size=32, memory_budget_bytes=max(2**20, loaded.row_bytes * 3))
    assert chunk_rows(loaded, tight) == max(2**20, loaded.row_bytes * 3) // loaded.row_bytes
    assert chunk_rows(loaded, Settings(chunk_size=32, memory_budget_bytes=2**20)) >= 1


def test_predict_batches_and_splits(loaded):
    runner = EngineRunner(Settings(max_batch_delay_ms=100))
    xs = [torch.randn(n, 3, 32, 32) for n in (1, 2)]

    async def run_all():
        return await asyncio.gather(*[runner.predict(loaded, x) for x in xs])

    outs = asyncio.run(run_all())
    runner.close()
    with torch.inference_mode():
        for x, out in zip(xs, outs, strict=True):
            torch.testing.assert_close(out, loaded.module(x), rtol=1e-4, atol=1e-5)
