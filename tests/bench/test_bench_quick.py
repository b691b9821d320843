"""The benchmarks' quick mode runs, so the scripts cannot rot. It checks the table, not the targets."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("captum")

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "overhead: explain e2e / fwd+bwd",
    "overhead, fold_batchnorm=False",
    "batching: 16 clients / raw batch 16",
    "raw batch / raw single",
    "vs Captum: gradient",
    "vs Captum: gradcam",
    "vs Captum: smoothgrad",
    "vs Captum: integrated_gradients",
    "vs Captum: occlusion",
    "vs Captum, engine only: gradient",
    "vs Captum, engine only: gradcam",
    "vs Captum, engine only: smoothgrad",
    "vs Captum, engine only: integrated_gradients",
    "vs Captum, engine only: occlusion",
    "vs Captum at its best batch: smoothgrad",
    "vs Captum at its best batch: integrated_gradients",
    "vs Captum at its best batch: occlusion",
    "memory: integrated_gradients / budget",
    "memory: smoothgrad / budget",
    "head-of-line: gradient during IG / IG alone",
    "head-of-line: IG with traffic / alone",
    "mixed load: cheap p50 / alone",
    "mixed load: cheap p99 / alone",
    "mixed load: expensive p50 / alone",
    "mixed load: expensive p99 / alone",
    "multi-method: 4 methods / gradient",
    "pacing 100 ms: IG-4 alone, engine only",
    "pacing 100 ms: gradient wait during IG-16, engine only",
    "pacing 250 ms: IG-4 alone, engine only",
    "pacing 250 ms: gradient wait during IG-16, engine only",
    "demo 128 px: gradcam e2e / forward",
    "demo 128 px: drise e2e / forward",
    "demo 128 px: integrated_gradients e2e / forward",
    "causal LM: gradient e2e / Captum",
    "causal LM: integrated_gradients e2e / Captum",
    "causal LM: generate 16 e2e / transformers generate",
    "causal LM: generate 16 kv_cache=false e2e / transformers generate",
)


def table_rows(output: str) -> dict[str, list[str]]:
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in output.splitlines() if line.startswith("| ")]
    return {row[0]: row[1:] for row in cells[1:]}  # the first is the header


def quick_rows(*only: str) -> tuple[dict[str, list[str]], str]:
    """`python -m bench.run --quick` (with `--only`, those benchmarks) in a subprocess: its table's rows, each
    checked for a finite positive ratio and positive figures, and its stdout."""
    extra = ["--only", ",".join(only)] if only else []
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", *extra, "--device", "cpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = table_rows(out.stdout)
    for name, (ours, baseline, ratio, _target, met, _note) in rows.items():
        assert math.isfinite(float(ratio)) and float(ratio) > 0, (name, ratio)
        assert met in ("yes", "**no**", "-"), (name, met)
        assert float(ours.split()[0]) > 0 and float(baseline.split()[0]) > 0, name
    return rows, out.stdout


def test_quick_mode_prints_every_row_with_a_finite_ratio():
    rows, stdout = quick_rows()
    assert sorted(rows) == sorted(ROWS), stdout
