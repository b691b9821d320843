"""Development scripts, not installed: training and measuring the demo models, the trust table, the gallery,
the OpenAPI writer. Run from the repository root: `python -m tools.demo.train`, `python -m tools.openapi`."""
