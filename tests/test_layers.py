"""The package's layering: the core and the models layer stay free of what sits above them."""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # A second protocol sits beside v1 without copying the explain flow: the core knows neither.
        ("service.core", {"fastapi", "starlette", "service.schemas", "service.api"}),
        ("service.sanity", {"fastapi", "starlette", "service.schemas", "service.api"}),
        # The models layer loads and prepares models; explaining them is the layer above.
        ("service.models", {"service.explainers", "service.core", "service.codecs"}),
        # Text support (transformers) is imported only when a text model is configured.
        ("service.main", {"transformers", "tokenizers", "service.codecs.text"}),
        # The Python client runs where the service's stack is not needed (nor, perhaps, installed).
        ("service.client", {"torch", "fastapi", "starlette", "service.core", "service.schemas"}),
        # The CLI's --version, --url and one-line mistakes answer without waiting seconds for torch.
        ("service.cli", {"torch", "service.core"}),
    ],
)
def test_a_layer_does_not_import_the_layers_above_it(module, forbidden):
    assert not imported_by(module) & forbidden
