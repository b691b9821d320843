"""Thin HTTP routers: validate, call the inference layer, return a typed schema."""
