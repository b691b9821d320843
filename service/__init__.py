"""saliency-service: serve PyTorch vision models with explanations."""

__version__ = "0.1.0"
