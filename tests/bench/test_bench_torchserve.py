"""The TorchServe baseline's quick mode runs where TorchServe is installed (the optional [bench] extra and Java).

It checks the table, not the figures. CI does not install TorchServe, so there it is skipped, with the reason.
"""

import pytest
from test_bench_quick import quick_rows

from bench.torchserve_server import missing  # the repository root is on pytest's path (pyproject.toml)

ROWS = (
    "torchserve: predict 1 client / TorchServe",
    "torchserve: predict 8 clients / TorchServe",
    "torchserve: IG-15 1 client / TorchServe",
    "torchserve: IG-15 8 clients / TorchServe",
    "torchserve: predict response bytes / TorchServe",
    "torchserve: IG-15 response bytes / TorchServe",
    "torchserve: IG-15 map correlation",
)


@pytest.mark.skipif(missing() is not None, reason=f"TorchServe cannot run here: {missing()}")
def test_torchserve_quick_prints_every_row():
    rows, stdout = quick_rows("torchserve")
    assert sorted(rows) == sorted(ROWS), stdout
    # The two servers explain the same class of the same input with the same method: the maps must agree.
    assert float(rows["torchserve: IG-15 map correlation"][2]) > 0.99, stdout
