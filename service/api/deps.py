"""Dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..core import Services
from ..metrics import Metrics


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ServicesDep = Annotated[Services, Depends(get_services)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def label(request: Request, **labels: str) -> None:
    """Model and method labels for this request's metrics (recorded by the metrics middleware)."""
    request.state.metric_labels = labels
