"""Prometheus metrics, one registry per app so that several apps (tests, workers) never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("endpoint", "model", "method")
        self.requests = Counter(
            "saliency_requests_total",
            "HTTP requests by outcome.",
            (*labels, "status"),
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
            "Images explained.",
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
            "saliency_queue_depth", "Images waiting for the engine.", ("model",), registry=self.registry
        )
        self.batch_size = Histogram(
            "saliency_batch_images",
            "Images per engine batch.",
            ("model", "method"),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "saliency_queue_seconds",
            "Time images wait before their batch runs.",
            ("model",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
