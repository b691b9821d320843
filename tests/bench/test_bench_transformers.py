"""The ViT benchmark's quick mode (a 2-block ViT at 64 px) runs, so the script cannot rot; it checks the
table, not the figures."""

from test_bench_quick import quick_rows

from bench.transformers import METHODS


def test_transformers_quick_prints_a_row_per_method():
    rows, stdout = quick_rows("transformers")
    assert sorted(rows) == sorted(f"ViT 64 px: {name} e2e / fwd+bwd" for name in METHODS), stdout
