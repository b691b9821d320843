"""service.models.pool: lazy, load-once, LRU-bounded, and a failed model leaves the others serving."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.demo.net import shapes_cnn
from service.errors import ModelUnavailable, UnknownModel
from service.models import ModelPool
from service.models.failures import Backoff
from service.models.prepare import PrepareOptions

DEMO_BYTES = sum(p.numel() * p.element_size() for p in shapes_cnn().parameters())


def pool_of(make_spec, *names: str, **options) -> ModelPool:
    return ModelPool([make_spec(n) for n in names], device="cpu", **options)


def loaded_names(pool: ModelPool) -> set[str]:
    return {name for name in pool.specs if pool.state(name)[0] == "loaded"}


def test_models_load_lazily_and_once(make_spec, load_counts):
    pool = pool_of(make_spec, "a", "b")
    assert pool.state("a") == ("not_loaded", None) and pool.peek("a") is None
    assert load_counts == {}
    first = pool.get("a")
    assert pool.get("a") is first and pool.peek("a") is first
    assert load_counts == {"a": 1}
    assert pool.state("a") == ("loaded", None) and pool.state("b") == ("not_loaded", None)


def test_a_loaded_model_knows_its_layers_and_size(make_spec):
    loaded = pool_of(make_spec, "a").get("a")
    names = [name for name, _ in loaded.layers]
    assert loaded.default_layer == names[-1] == "block4"
    assert dict(loaded.layers)["block4"] == (64, 4, 4)  # 32x32 input, three 2x poolings
    # The folded model's parameters are counted beside the original's: both stay resident.
    assert DEMO_BYTES < loaded.param_bytes < 2 * DEMO_BYTES
    assert pool_of(make_spec, "a", prepare=PrepareOptions(fold_batchnorm=False)).get("a").param_bytes == DEMO_BYTES
    assert str(loaded.device) == "cpu" and loaded.load_seconds > 0
    assert not loaded.module.training


def test_a_configured_target_layer_becomes_the_default(make_spec):
    pool = ModelPool([make_spec("a", target_layer="block3")], device="cpu")
    assert pool.get("a").default_layer == "block3"


def test_eight_threads_asking_at_once_load_the_model_once(make_spec, load_counts):
    pool = pool_of(make_spec, "a")
    start = threading.Barrier(8)

    def get(_):
        start.wait()
        return pool.get("a")

    with ThreadPoolExecutor(8) as executor:
        models = list(executor.map(get, range(8)))
    assert load_counts == {"a": 1}
    assert all(m is models[0] for m in models)


def test_eight_threads_asking_for_a_failing_model_try_once(make_spec, load_counts, tmp_path):
    pool = ModelPool([make_spec("bad", weights=tmp_path / "nope.pt")], device="cpu")
    start = threading.Barrier(8)

    def get(_):
        start.wait()
        with pytest.raises(ModelUnavailable):
            pool.get("bad")

    with ThreadPoolExecutor(8) as executor:
        list(executor.map(get, range(8)))
    assert load_counts == {"bad": 1}


def test_different_models_load_in_parallel_without_mixing_up(make_spec, load_counts):
    pool = pool_of(make_spec, "a", "b", "c")
    with ThreadPoolExecutor(6) as executor:
        models = list(executor.map(pool.get, ["a", "b", "c"] * 2))
    assert [m.spec.name for m in models] == ["a", "b", "c"] * 2
    assert load_counts == {"a": 1, "b": 1, "c": 1}


def test_least_recently_used_is_evicted_beyond_max_loaded(make_spec, load_counts):
    pool = pool_of(make_spec, "a", "b", "c", max_loaded=2)
    pool.get("a")
    pool.get("b")
    pool.get("c")
    assert loaded_names(pool) == {"b", "c"}
    pool.get("b")  # now c is the least recently used
    pool.get("a")
    assert loaded_names(pool) == {"a", "b"}
    assert load_counts == {"a": 2, "b": 1, "c": 1}  # an evicted model loads again when asked for


def test_least_recently_used_is_evicted_beyond_max_param_bytes(make_spec):
    unfolded = PrepareOptions(fold_batchnorm=False)  # one copy of the weights per model: exact sums
    pool = pool_of(make_spec, "a", "b", "c", max_param_bytes=2 * DEMO_BYTES + DEMO_BYTES // 2, prepare=unfolded)
    for name in ("a", "b", "c"):
        pool.get(name)
    assert loaded_names(pool) == {"b", "c"}
    pool = pool_of(make_spec, "a", "b", max_param_bytes=DEMO_BYTES)
    pool.get("a")
    pool.get("b")
    assert loaded_names(pool) == {"b"}


def test_a_model_over_the_byte_budget_on_its_own_is_still_served(make_spec):
    pool = pool_of(make_spec, "a", max_param_bytes=DEMO_BYTES // 2)
    assert pool.get("a").spec.name == "a"
    assert loaded_names(pool) == {"a"}


def test_a_failed_model_does_not_break_the_others(make_spec, load_counts, tmp_path):
    pool = ModelPool([make_spec("bad", weights=tmp_path / "nope.pt"), make_spec("good")], device="cpu")
    with pytest.raises(ModelUnavailable) as caught:
        pool.get("bad")
    assert caught.value.status == 503
    # Clients get the short reason, not the path or the library's text (the log has those).
    assert caught.value.message == "model 'bad' failed to load: cannot read weights: file not found"
    assert pool.get("good").spec.name == "good"
    state, reason = pool.state("bad")
    assert (state, reason) == ("failed", "cannot read weights: file not found")
    with pytest.raises(ModelUnavailable, match="failed to load") as again:
        pool.get("bad")
    assert int(again.value.headers["Retry-After"]) >= 1
    assert load_counts == {"bad": 1, "good": 1}  # within the cool-down a failure is remembered, not retried


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_load_is_retried_after_a_growing_cool_down(make_spec, resnet18_weights, load_counts, tmp_path):
    clock = FakeClock()
    weights = tmp_path / "late.pt"
    pool = ModelPool(
        [make_spec("late", architecture="torchvision:resnet18", weights=weights)],
        device="cpu",
        backoff=Backoff(first_s=5, max_s=12),
        clock=clock,
    )
    waits = []
    for _ in range(4):
        with pytest.raises(ModelUnavailable) as caught:
            pool.get("late")
        waits.append(int(caught.value.headers["Retry-After"]))
        clock.now += waits[-1]  # the cool-down is over: the next request tries to load again
    assert waits == [5, 10, 12, 12] and load_counts["late"] == 4
    weights.write_bytes(resnet18_weights[0].read_bytes())  # the weights file appears later
    assert pool.get("late").spec.name == "late"
    assert pool.state("late") == ("loaded", None)


def test_retry_due_reloads_failed_preload_models_only(make_spec, resnet18_weights, tmp_path):
    clock = FakeClock()
    spec = {"architecture": "torchvision:resnet18", "weights": tmp_path / "late.pt"}
    pool = ModelPool(
        [make_spec("eager", **spec), make_spec("lazy", preload=False, **spec)],
        device="cpu",
        backoff=Backoff(first_s=5),
        clock=clock,
    )
    pool.preload()
    with pytest.raises(ModelUnavailable):
        pool.get("lazy")
    assert set(pool.failures()) == {"eager"}
    (tmp_path / "late.pt").write_bytes(resnet18_weights[0].read_bytes())
    pool.retry_due()
    assert pool.state("eager")[0] == "failed", "not before the cool-down"
    clock.now += 5
    pool.retry_due()
    assert pool.state("eager") == ("loaded", None) and pool.failures() == {}
    assert pool.state("lazy")[0] == "failed", "lazy models retry on their next request, not in the background"


def test_unknown_models(make_spec):
    pool = pool_of(make_spec, "a")
    for call in (pool.get, pool.state, pool.spec):
        with pytest.raises(UnknownModel) as caught:
            call("nope")
        assert caught.value.status == 404


def test_readiness_failures(make_spec, tmp_path):
    pool = ModelPool(
        [
            make_spec("eager"),
            make_spec("lazy", preload=False),
            make_spec("broken", weights=tmp_path / "nope.pt"),
            make_spec("broken-lazy", weights=tmp_path / "nope.pt", preload=False),
        ],
        device="cpu",
    )
    assert pool.failures() == {"eager": "not loaded yet", "broken": "not loaded yet"}
    pool.preload()
    failures = pool.failures()
    assert failures == {"broken": "cannot read weights: file not found"}
    assert pool.state("lazy") == ("not_loaded", None) and pool.state("eager")[0] == "loaded"


def test_on_load_is_called_once_per_load(make_spec):
    seen = []
    pool = pool_of(make_spec, "a", "b", max_loaded=1, on_load=lambda m: seen.append(m.spec.name))
    pool.get("a")
    pool.get("a")
    pool.get("b")
    pool.get("a")
    assert seen == ["a", "b", "a"]


def test_the_device_setting(make_spec):
    assert str(ModelPool([make_spec()], device="cpu").device) == "cpu"
    assert ModelPool([make_spec()], device="auto").device.type in ("cpu", "cuda")


def test_readiness_ignores_lazy_failures_and_evictions(make_spec, tmp_path):
    pool = ModelPool(
        [make_spec("a"), make_spec("b"), make_spec("broken-lazy", weights=tmp_path / "nope.pt", preload=False)],
        device="cpu",
        max_loaded=1,
    )
    pool.preload()  # loads a, then b, which evicts a
    assert pool.state("a") == ("not_loaded", None)
    with pytest.raises(ModelUnavailable):
        pool.get("broken-lazy")
    assert pool.state("broken-lazy")[0] == "failed"
    assert pool.failures() == {}, "an evicted preload model reloads on demand; a lazy model's failure is its own"
