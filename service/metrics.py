"""Prometheus metrics, one registry per app so that several apps (tests, workers) never collide."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry()
        # What the default registry would hold (CPU, memory, open files, GC, Python version), in ours.
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        labels = ("endpoint", "model", "method")
        self.requests = Counter(
            "saliency_requests_total",
            "HTTP requests by outcome (status 499: the client left before the answer).",
            # key: the API key's configured name ("" without keys), never the key.
            (*labels, "key", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "saliency_request_seconds",
            "End-to-end request latency.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "saliency_errors_total", "Error responses by code.", (*labels, "code"), registry=self.registry
        )
        self.images = Counter(
            "saliency_images_explained_total",
            "Inputs explained: images, texts and prompts (the name is kept for existing dashboards).",
            ("model", "method"),
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "saliency_model_load_seconds",
            "Time the last load of a model took.",
            ("model",),
            registry=self.registry,
        )
        self.loaded = Gauge("saliency_models_loaded", "Models resident in the pool.", registry=self.registry)
        self.queue_depth = Gauge(
            "saliency_queue_depth", "Images in the engine (queued or running).", ("model",), registry=self.registry
        )
        # The scheduler (service/scheduler): per-device work, in rows (model passes).
        self.busy = Gauge(
            "saliency_device_busy_ratio", "Share of the last 10 s the device ran passes.", ("device",), registry=reg
        )
        self.busy_seconds = Counter(
            "saliency_device_busy_seconds_total", "Seconds the device ran passes.", ("device",), registry=reg
        )
        self.rows = Counter(
            "saliency_rows_total", "Rows (model passes) run, by pass kind.", ("device", "kind"), registry=reg
        )
        self.chunk_rows = Histogram(
            "saliency_chunk_rows",
            "Rows per pass, from all the requests sharing it.",
            ("device",),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=reg,
        )
        self.queue_rows = Gauge(
            "saliency_queue_rows", "Rows admitted and not yet run, per device.", ("device",), registry=reg
        )
        self.in_flight = Gauge("saliency_engine_requests_in_flight", "Requests in the engine.", registry=reg)
        self.engine_seconds = Histogram(
            "saliency_engine_seconds",
            "Seconds a request spent in the engine (queue and passes).",
            ("model",),
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.deadlines = Counter(
            "saliency_deadlines_exceeded_total", "Requests answered 504 at their deadline.", ("model",), registry=reg
        )
        self.cancellations = Counter(
            "saliency_cancellations_total",
            "Requests whose remaining rows were dropped (client gone or deadline).",
            ("model",),
            registry=reg,
        )
