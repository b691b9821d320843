"""What a request needs, built once: by the app's lifespan (service.main) or by a command here (service.cli)."""

from __future__ import annotations

from dataclasses import dataclass

from ..codecs.workers import CodecWorkers
from ..engine.pacing import FIRST_ROWS
from ..engine.runner import EngineRunner
from ..explainers import Registry, default_registry
from ..metrics import Metrics
from ..models import LoadedModel, ModelPool, load_config
from ..models.failures import Backoff
from ..models.pool import resolve_device
from ..models.prepare import PrepareOptions
from ..settings import Settings


@dataclass
class Services:
    settings: Settings
    pool: ModelPool
    registry: Registry
    runner: EngineRunner
    codecs: CodecWorkers

    def close(self) -> None:
        self.runner.close()
        self.codecs.close()


def build_services(settings: Settings, metrics: Metrics | None = None) -> Services:
    def on_load(loaded: LoadedModel) -> None:
        if metrics is not None:
            metrics.load_seconds.labels(loaded.spec.name).set(loaded.load_seconds)

    pool = ModelPool(
        load_config(settings.config),
        device=settings.device,
        max_loaded=settings.max_loaded_models,
        max_param_bytes=settings.max_param_bytes,
        on_load=on_load,
        prepare=prepare_options(settings),
        backoff=Backoff(settings.load_retry_s, settings.load_retry_max_s),
    )
    return Services(
        settings=settings,
        pool=pool,
        registry=default_registry(),
        runner=EngineRunner(settings, metrics),
        codecs=CodecWorkers(settings.codec_threads),
    )


def prepare_options(settings: Settings) -> PrepareOptions:
    # Compiled passes are warmed up for one row and a first pass of the device the models will run on (later
    # passes, sized by time, may compile for their own sizes).
    chunk = settings.chunk_size or FIRST_ROWS.get(resolve_device(settings.device).type, FIRST_ROWS["cuda"])
    return PrepareOptions(
        fold_batchnorm=settings.fold_batchnorm,
        channels_last=settings.channels_last,
        compile=settings.compile,
        compile_sizes=(1, chunk),
        tolerance=settings.prepare_tolerance,
    )
