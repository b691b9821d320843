"""Where each millisecond of a request goes, end to end on a real server: `python -m bench.breakdown`.

The cases of issue 19's missed targets, each on a server in this process (bench/common.py) with the probes
of bench/tracing.py: IG-50, SmoothGrad-25 and occlusion 16/8 at 112 px (one lossless PNG, the raw float32
map back, parsed by the client, as bench/captum_compare.py sends it) beside Captum at its defaults in this
process; one gradient request at 224 px (float16 + overlay, bench/overhead.py's) beside the raw fwd+bwd of
the user's model; and 16 clients in a closed loop (bench/breakdown_burst.py) beside raw batch-16 throughput.
The two sides alternate. Each request is cut at the instants the probes saw into consecutive stages that
add up to its latency; tables give each stage's median over the timed requests.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import torch

from service.codecs import workers

from . import captum_compare as cc
from .breakdown_stages import OtherLoad, post, stages, table
from .common import (
    Plan,
    Served,
    fwd_bwd,
    machine,
    median,
    model_input,
    png_bytes,
    sample_image,
    server,
    timed,
    user_model,
    write_config,
)
from .overhead import explain_body
from .tracing import Probe, probes


@dataclass
class Case:
    name: str
    body: bytes
    parse: bool  # the client decodes the raw map, as captum_compare's end-to-end side does
    baseline_name: str
    baseline: Callable[[], object]


def captum_cases(served: Served, methods: list[str]) -> list[Case]:
    plan = Plan()
    image = png_bytes(sample_image(plan.captum_size))
    x = cc.expected_input(served.loaded, served.settings, image)
    model = user_model(served.loaded)
    calls = cc.captum_calls(model, served.loaded, x, plan)
    b64 = base64.b64encode(image).decode("ascii")
    names = {"integrated_gradients": "IG-50", "smoothgrad": "SmoothGrad-25", "occlusion": "occlusion 16/8"}

    def captum(method: str) -> Callable[[], object]:
        def call() -> object:
            with torch.no_grad():
                target = model(x).argmax(dim=1)  # the prediction forward a user needs first
            return calls[method](target)

        return call

    return [
        Case(
            f"{names[m]}, resnet18 112 px, raw float32 map",
            json.dumps({"images": [b64], "method": cc.our_specs(plan)[m], "output": cc.RAW}).encode(),
            True,
            "Captum at its defaults, in-process (prediction forward + attribute)",
            captum(m),
        )
        for m in names
        if m in methods
    ]


def gradient_case(served: Served) -> Case:
    model, x = user_model(served.loaded), model_input(served.loaded)
    return Case(
        "gradient, resnet18 224 px, float16 + overlay (one client)",
        explain_body(224),
        False,
        "raw fwd+bwd of the user's model",
        lambda: fwd_bwd(model, x),
    )


def run_case(case: Case, url: str, probe: Probe, repeats: int) -> str:
    rows, base, others = [], [], OtherLoad()
    with httpx.Client(base_url=url, timeout=600) as client:
        for i in range(2):  # the pacer learns this kind of pass; the connection opens; the baseline warms
            post(client, case.body, f"warm-{i}", case.parse)
            case.baseline()
        for i in range(repeats):
            for side in ("ours", "base") if i % 2 == 0 else ("base", "ours"):
                if side == "base":
                    base.append(timed(case.baseline, "cpu"))
                    continue
                probe.clear()
                tag = f"request-{i}"
                answered = post(client, case.body, tag, case.parse)
                rows.append(stages(probe.traces[tag], probe, answered))
    note = f"{repeats} requests; {others.note()}"
    return table(case.name, rows, (case.baseline_name, median(base) * 1000), note)


def knobs(args: argparse.Namespace) -> None:
    """Process-wide experiments (both sides of every ratio run in this process)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.interop_threads:
        torch.set_num_interop_threads(args.interop_threads)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.codec_torch_threads:  # the codec threads' own intra-op threads, set as each starts
        start = workers.CodecWorkers.__init__

        def init(self: workers.CodecWorkers, threads: int) -> None:
            start(self, threads)
            self._pool = ThreadPoolExecutor(
                threads, "codec", initializer=torch.set_num_threads, initargs=(args.codec_torch_threads,)
            )

        workers.CodecWorkers.__init__ = init  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from .breakdown_burst import burst

    parser = argparse.ArgumentParser(prog="python -m bench.breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="integrated_gradients,smoothgrad,occlusion,gradient,burst")
    parser.add_argument("--set", action="append", default=[], help="a server setting KEY=VALUE (repeatable)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads, the whole process (both sides)")
    parser.add_argument("--interop-threads", type=int, help="torch.set_num_interop_threads, the whole process")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (seconds; the GIL's)")
    parser.add_argument("--codec-torch-threads", type=int, help="torch.set_num_threads on each codec thread")
    args = parser.parse_args(argv)
    knobs(args)
    overrides = dict(s.split("=", 1) for s in args.set)
    wanted = args.only.split(",")
    given = {k: v for k, v in vars(args).items() if v and k not in ("repeats", "only")}
    print(f"machine: {machine()}\nsettings and knobs given: {given or 'none'}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, probes() as probe:
        if set(wanted) & {"integrated_gradients", "smoothgrad", "occlusion"}:
            with server(write_config(Path(folder), "resnet18", 112), "cpu", **overrides) as served:
                for case in captum_cases(served, wanted):
                    print(run_case(case, served.url, probe, args.repeats), "\n", flush=True)
        if set(wanted) & {"gradient", "burst"}:
            with server(write_config(Path(folder), "resnet18", 224), "cpu", **overrides) as served:
                if "gradient" in wanted:
                    print(run_case(gradient_case(served), served.url, probe, 4 * args.repeats), "\n", flush=True)
                if "burst" in wanted:
                    print(burst(served, probe), "\n", flush=True)
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
