"""Settings from the environment (SALIENCY_*) or arguments, validated at construction."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO_CONFIG = Path(__file__).parent / "demo" / "models.toml"
ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/]+")  # what a browser sends in Origin: no path, no slash


def split_list(value: object) -> object:
    """A JSON list, or comma-separated values (pydantic-settings alone would only take JSON)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list ({exc.msg}); or give comma-separated values") from None
    return [part.strip() for part in text.split(",") if part.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SALIENCY_", extra="ignore")

    config: Path = Field(DEMO_CONFIG, description="Models TOML; default: the bundled demo models.")
    device: str = Field("auto", description='"auto" (cuda when available), "cpu", "cuda", "cuda:1", ...')
    max_loaded_models: int = Field(8, ge=1)
    load_retry_s: float = Field(
        5.0, gt=0, description="After a failed load, wait this long before trying again; doubled after each failure."
    )
    load_retry_max_s: float = Field(300.0, gt=0, description="The longest wait between two tries of a failed load.")
    max_param_bytes: int | None = Field(None, ge=1, description="Evict LRU models above this many bytes.")

    # Engine: rows per forward/backward pass (SmoothGrad samples, IG steps, occlusion windows share them).
    chunk_size: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="At most this many rows per pass (default: as many as the memory budget and the pass-time "
        "target allow). Results do not depend on it.",
    )
    pass_target_ms: float | None = Field(
        None,
        gt=0,
        le=60_000,
        description="How long one pass should take: the rows of each pass are this over the measured time per row "
        "of that kind of pass. Large passes run a request alone fastest; a request arriving meanwhile waits about "
        "one pass. Default 250 ms on the CPU, 50 ms on a GPU (bench/README.md).",
    )
    memory_budget_bytes: int = Field(
        2 * 2**30, ge=2**20, description="Lowers chunk_size so one pass's activations fit in this many bytes."
    )
    max_kv_cache_bytes: int = Field(
        512 * 2**20,
        ge=0,
        description="KV cache one generation may hold (service/models/kv_cache.py); a generation whose cache would "
        "grow past it recomputes every step instead (the same tokens, slower). 0: never cache.",
    )
    max_passes_per_image: int = Field(1100, ge=1, description="Caps steps, samples and occlusion windows.")
    # Admission, before any pixel is decoded; 413 beyond. Passes: service/core/rows.py; memory from the image
    # headers: service/codecs/image/admission.py.
    max_passes_per_request: int = Field(
        16_384, ge=1, description="Caps model passes of a request over all its images (passes per image x images)."
    )
    max_output_pixels: int = Field(
        50_000_000, ge=1, description="Caps original-size output pixels (size=original, overlays), summed over images."
    )
    max_request_bytes: int = Field(
        512 * 2**20, ge=2**20, description="Caps a request's estimated peak memory (images, maps, PNGs, response)."
    )

    # Request limits.
    max_body_bytes: int = Field(20 * 2**20, ge=1024)
    body_timeout_s: float = Field(
        30.0, gt=0, description="Longest a client may take to send its body; a stalled upload gets 408."
    )
    max_images: int = Field(16, ge=1)
    max_image_bytes: int = Field(10 * 2**20, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=1)
    max_top_k: int = Field(100, ge=1)
    max_texts: int = Field(16, ge=1, description="Texts per request (text models).")
    max_text_chars: int = Field(5000, ge=1, description="Characters per text; a model's max_length caps its tokens.")

    # Scheduling (service/scheduler): rows of all requests on a device share passes.
    max_queue_rows: int = Field(
        50_000, ge=1, description="Rows (model passes) admitted per device; beyond it requests get 503 + Retry-After."
    )
    scheduler_age_limit: int = Field(
        4, ge=1, description="A request skipped this many passes in a row leads the next one (no starvation)."
    )
    request_timeout_s: float = Field(
        60.0, gt=0, description="Longest a request may take; a request's timeout_ms can only lower it (504 after)."
    )

    # HTTP.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description='"*", or origins comma-separated or as a JSON list'
    )
    drain_seconds: float = Field(0.0, ge=0, description="On SIGTERM, report not-ready this long before exiting.")

    # Security (README: "Security: API keys"). No keys: the API is open (the local demo).
    api_keys: Path | None = Field(None, description="File of SHA-256 key hashes, one per line, optional name after.")
    api_key_hashes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description='"sha256hex[:name]" entries, comma-separated or as a JSON list'
    )
    metrics_auth: bool = Field(False, description="/metrics needs a key too.")
    docs: Literal["open", "auth", "off"] = Field("open", description="/docs, /redoc and /openapi.json")
    log_format: Literal["text", "json"] = "text"

    # Preparing each model once at load (service/models/prepare.py); each rewrite is checked against the model.
    fold_batchnorm: bool = Field(
        True, description="Fold eval-mode BatchNorm into the convolution before it (same maps up to float rounding)."
    )
    compile: bool = Field(
        False, description="Run passes without layer hooks through torch.compile (slower loads; see bench/README.md)."
    )
    prepare_tolerance: float = Field(
        1e-3, gt=0, le=1, description="How far a prepared model may differ beyond float rounding before it is dropped."
    )
    codec_threads: int = Field(
        4, ge=1, le=64, description="Threads that decode images and encode maps, beside the device's thread."
    )

    # GPU options that change results, so off by default.
    channels_last: bool = False
    autocast: Literal["off", "bf16", "fp16"] = "off"

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "auto" and not (value == "cpu" or value.startswith("cuda") or value == "mps"):
            raise ValueError(f'device must be "auto", "cpu", "cuda[:N]" or "mps", got {value!r}')
        return value

    @field_validator("cors_origins", "api_key_hashes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_list(value)

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin: use '*' or scheme://host[:port] without a path")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _no_empty_path(cls, value: object) -> object:
        return None if value == "" else value
