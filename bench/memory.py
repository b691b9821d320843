"""Memory: peak memory of heavy explanations with the default budget, over that budget.

Each measurement runs in a fresh interpreter (`python -m bench.memory CHILD_JSON`) so that nothing earlier
counts. On CPU the peak is VmHWM (peak resident set) after the call minus VmRSS before it, with the peak
reset (/proc/self/clear_refs) once the model is loaded; torch's allocations are invisible to tracemalloc. On
CUDA it is torch.cuda.max_memory_allocated over memory_allocated before.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from service.core.plans import explain_here
from service.engine.runner import chunk_rows
from service.explainers import default_registry

from .common import Context, Report, Row, load_model, model_input, sync, write_config

MiB = 2**20


def proc_status(key: str) -> int:
    """A /proc/self/status memory line, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure_here(config: str, device: str, spec: dict) -> dict:
    loaded, settings = load_model(Path(config), device)
    x = model_input(loaded)
    explainer, params = default_registry().parse(spec)
    targets = torch.full((1,), -1, dtype=torch.long)
    cuda = loaded.device.type == "cuda"
    if cuda:
        sync(loaded.device)
        torch.cuda.reset_peak_memory_stats(loaded.device)
        before = torch.cuda.memory_allocated(loaded.device)
    else:
        before = proc_status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS: the model's loading peak does not count
    started = time.perf_counter()
    explain_here(loaded, explainer, params, x, targets, "logit", settings)
    sync(loaded.device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(loaded.device) if cuda else proc_status("VmHWM")
    return {
        "peak": peak - before,
        "seconds": seconds,
        "chunk": chunk_rows(loaded, settings),
        "row_bytes": loaded.row_bytes,
        "budget": settings.memory_budget_bytes,
    }


def measure(config: Path, device: str, spec: dict) -> dict:
    """measure_here in a fresh interpreter."""
    arg = json.dumps({"config": str(config), "device": device, "spec": spec})
    out = subprocess.run([sys.executable, "-m", "bench.memory", arg], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> Report:
    plan = ctx.plan
    config = write_config(ctx.folder, plan.memory_arch, plan.size)
    report = Report()
    one_pass = measure(config, plan.device, {"name": "gradient"})
    cases = {
        "integrated_gradients": {"name": "integrated_gradients", "steps": plan.memory_ig_steps},
        "smoothgrad": {"name": "smoothgrad", "samples": plan.memory_smoothgrad_samples},
    }
    for method, spec in cases.items():
        result = measure(config, plan.device, spec)
        chunk = result["chunk"]
        passes = spec.get("steps", spec.get("samples"))
        per_row = (result["peak"] - one_pass["peak"]) / (chunk - 1) if chunk > 1 else float("nan")
        report.rows.append(
            Row(
                f"memory: {method} / budget",
                result["peak"] / MiB,
                result["budget"] / MiB,
                "MiB",
                ("<=", 1.0),
                f"{plan.memory_arch} {plan.size}px, {passes} passes, chunk {chunk} rows, {result['seconds']:.1f} s",
            )
        )
        report.notes.append(
            f"memory {method}: peak {result['peak'] / MiB:.0f} MiB with chunk {chunk}; one row (gradient) "
            f"{one_pass['peak'] / MiB:.0f} MiB; so about {per_row / MiB:.0f} MiB per extra row, against the "
            f"pool's estimate of {result['row_bytes'] / MiB:.0f} MiB per row"
        )
    return report


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(measure_here(args["config"], args["device"], args["spec"])))
