"""Model specs, loaders, preprocessing and the pool."""

from .pool import LoadedModel, ModelPool
from .spec import ModelSpec, load_config

__all__ = ["LoadedModel", "ModelPool", "ModelSpec", "load_config"]
