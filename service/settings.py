"""Settings from the environment (SALIENCY_*) or arguments, validated at construction."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_CONFIG = Path(__file__).parent / "demo" / "models.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALIENCY_", extra="ignore")

    config: Path = Field(DEMO_CONFIG, description="Models TOML; default: the bundled demo models.")
    device: str = Field("auto", description='"auto" (cuda when available), "cpu", "cuda", "cuda:1", ...')
    max_loaded_models: int = Field(8, ge=1)
    max_param_bytes: int | None = Field(None, ge=1, description="Evict LRU models above this many bytes.")

    # Engine: rows per forward/backward pass (SmoothGrad samples, IG steps, occlusion windows share them).
    chunk_size: int = Field(32, ge=1, le=4096)
    memory_budget_bytes: int = Field(
        2 * 2**30, ge=2**20, description="Lowers chunk_size so one pass's activations fit in this many bytes."
    )
    max_passes_per_image: int = Field(1100, ge=1, description="Caps steps, samples and occlusion windows.")

    # Request limits.
    max_body_bytes: int = Field(20 * 2**20, ge=1024)
    max_images: int = Field(16, ge=1)
    max_image_bytes: int = Field(10 * 2**20, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_top_k: int = Field(100, ge=1)

    # Batching and queueing.
    max_batch_size: int = Field(16, ge=1)
    max_batch_delay_ms: float = Field(5.0, ge=0)
    max_queue: int = Field(256, ge=1, description="Images waiting per model; beyond it requests get 503.")
    batching: bool = True

    # HTTP.
    cors_origins: list[str] = Field(default_factory=list, description='e.g. ["https://dash.example.com"] or ["*"]')
    drain_seconds: float = Field(0.0, ge=0, description="On SIGTERM, report not-ready this long before exiting.")

    # GPU options that change results, so off by default.
    channels_last: bool = False
    autocast: Literal["off", "bf16", "fp16"] = "off"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "auto" and not (value == "cpu" or value.startswith("cuda") or value == "mps"):
            raise ValueError(f'device must be "auto", "cpu", "cuda[:N]" or "mps", got {value!r}')
        return value
