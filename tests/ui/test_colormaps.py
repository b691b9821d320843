"""The dashboard's colormap tables (static/colormaps.js) are matplotlib's, looked up as the server does."""

from __future__ import annotations

import re

import numpy as np
import pytest

from service.codecs.image.maps import colorize
from service.codecs.options import COLORMAPS
from service.ui import colormaps


def committed() -> dict[str, np.ndarray]:
    """The tables as the browser reads them: name -> (N, 3) uint8, parsed from the committed JS module."""
    text = colormaps.OUT.read_text()
    found = re.findall(r'^  "([A-Za-z_]+)": "([0-9a-f]+)",$', text, flags=re.MULTILINE)
    return {name: np.frombuffer(bytes.fromhex(hexes), dtype=np.uint8).reshape(-1, 3) for name, hexes in found}


def test_the_committed_module_is_up_to_date():
    assert colormaps.OUT.read_text() == colormaps.render(), "run `python -m service.ui.colormaps` and commit"


def test_every_colormap_the_api_offers_is_in_the_module():
    assert list(committed()) == list(COLORMAPS)


@pytest.mark.parametrize("name", COLORMAPS)
def test_the_browsers_lookup_gives_the_servers_colours(name):
    """maps.js colours u with entry min(floor(fround(u * N)), N - 1) of the table: for every float32 u in a
    dense grid over [0, 1] (both ends and each entry's edges included) that is the colour the server draws."""
    table = committed()[name]
    n = len(table)
    edges = np.arange(n + 1, dtype=np.float32) / np.float32(n)
    below = np.nextafter(edges, np.float32(-1))
    unit = np.clip(np.concatenate([np.linspace(0, 1, 10_001, dtype=np.float32), edges, below]), 0, 1)
    index = np.minimum(np.floor(unit * np.float32(n)).astype(int), n - 1)
    assert np.array_equal(table[index], colorize(unit, name))
