"""The models this server is configured with, and their state."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from ...core.catalog import describe
from ..deps import ServicesDep
from .schemas import ErrorBody, ModelInfo

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
def list_models(services: ServicesDep) -> list[ModelInfo]:
    """Every configured model with its state."""
    return [ModelInfo(**asdict(describe(services, name))) for name in services.pool.specs]


@router.get("/{name}", responses={404: {"model": ErrorBody}})
def get_model(name: str, services: ServicesDep) -> ModelInfo:
    """One model: input size, classes and their labels, device, state, and the layers the CAM methods accept."""
    return ModelInfo(**asdict(describe(services, name)))
