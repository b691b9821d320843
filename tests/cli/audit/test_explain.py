"""Which errors skip one input (the service named it) and which end the audit."""

from __future__ import annotations

import pytest

from service.cli.audit.explain import refused_input


@pytest.mark.parametrize(
    "field, index",
    [("images.3", 3), ("images.0", 0), ("texts.2", None), ("images", None), (None, None), ("images.8", None),
     ("images.1.x", None), ("method.steps", None), ("images.-1", None)],
)  # fmt: skip
def test_an_error_skips_an_input_only_when_it_names_one_of_the_request(field, index):
    assert refused_input(field, "images", 8) == index
