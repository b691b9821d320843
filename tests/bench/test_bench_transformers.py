"""The ViT benchmark's quick mode (a 2-block ViT at 64 px) runs, so the script cannot rot; it checks the
table, not the figures."""

import math
import subprocess
import sys

from test_bench_quick import ROOT, table_rows

from bench.transformers import METHODS


def test_transformers_quick_prints_a_row_per_method():
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "transformers", "--device", "cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = table_rows(out.stdout)
    assert sorted(rows) == sorted(f"ViT 64 px: {name} e2e / fwd+bwd" for name in METHODS), out.stdout
    for name, (_ours, _baseline, ratio, *_rest) in rows.items():
        assert math.isfinite(float(ratio)) and float(ratio) > 0, (name, ratio)
