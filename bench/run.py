"""python -m bench.run [--quick] [--only overhead,...] [--device cpu|cuda] [--size N] [--before DIR]

Prints one table; every figure is a ratio of two measurements taken in this run.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from .common import Context, Plan, Report, Servers, machine, table

BENCHMARKS = {
    "overhead": "bench.overhead",
    "batching": "bench.batching",
    "captum": "bench.captum_compare",
    "memory": "bench.memory",
    "scheduling": "bench.scheduling",
    "pacing": "bench.pacing",
    "transformers": "bench.transformers",  # issue 20: each method on vit_b_16 at 224 px
    "detection": "bench.detection",  # issue 21: each method per image on the demo FCOS and a Faster R-CNN
    "causal_lm": "bench.causal_lm",  # issue 22: each method on a GPT-2 against Captum's LLM attribution
    "torchserve": "bench.torchserve",  # needs the [bench] extra and Java 17; prints why and gives no rows without
    "compile": "bench.compiling",  # last: the compiler's state stays in the process
}
# --quick runs these only when named: compiling takes a minute or more whatever the size; TorchServe is an
# optional install (tests/bench/test_bench_torchserve.py runs it when present).
QUICK_SKIPS = {"compile", "torchserve", "transformers"}  # transformers: tests/bench/test_bench_transformers.py


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (resnet18 at 64x64), one or two repeats")
    parser.add_argument(
        "--only",
        help=f"comma-separated subset of {list(BENCHMARKS)} (default: all; with --quick all but {sorted(QUICK_SKIPS)})",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", type=int, help="input side in pixels (default 224, quick 64)")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of an older commit (git worktree add /tmp/before <commit>): the batching and scheduling "
        "benchmarks measure its server too, in this run",
    )
    args = parser.parse_args(argv)
    if args.only is None:
        args.only = ",".join(name for name in BENCHMARKS if not (args.quick and name in QUICK_SKIPS))
    unknown = set(args.only.split(",")) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; choose from {list(BENCHMARKS)}")
    if args.before is not None and not (args.before / "service" / "main.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of this project (no service/main.py)")
    return args


def main(argv: list[str] | None = None) -> Report:
    args = parse(argv)
    plan = Plan.quick(args.device) if args.quick else Plan(device=args.device)
    if args.size:
        plan = Plan(**{**plan.__dict__, "size": args.size})
    print(f"machine: {machine()}", flush=True)
    print(f"command: python -m bench.run {' '.join(sys.argv[1:] if argv is None else argv)}", flush=True)
    report = Report()
    servers = Servers()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        try:
            for name in args.only.split(","):
                started = time.perf_counter()
                module = importlib.import_module(BENCHMARKS[name])
                report.extend(module.run(Context(plan, Path(folder), servers, args.before)))
                load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
                print(f"  {name} done in {time.perf_counter() - started:.0f} s; load average {load}", flush=True)
        finally:
            servers.close()
    print(f"machine after: {machine()}")
    print()
    print(table(report.rows))
    print()
    for note in report.notes:
        print(f"- {note}")
    if any(not math.isfinite(r.ratio) for r in report.rows):
        raise SystemExit("a ratio is not finite")
    return report


if __name__ == "__main__":
    main()
