"""The stages of one request from the probes' instants (bench/tracing.py), and the table of their medians."""

from __future__ import annotations

import base64
import os
import time

import httpx

from .common import MODEL, median
from .tracing import HEADER, Pass, Probe, Trace

Client = tuple[float, float, float]  # sent, answered (httpx returned), parsed (JSON + base64 decoded)
MODEL_ROW = "model: forward/backward in every pass"
ADMIT = ("admit", "decode")


def post(client: httpx.Client, body: bytes, tag: str, parse: bool) -> Client:
    headers = {"content-type": "application/json", HEADER.decode(): tag}
    sent = time.perf_counter()
    response = client.post(f"/v1/models/{MODEL}/explain", content=body, headers=headers)
    answered = time.perf_counter()
    response.raise_for_status()
    if parse:
        base64.b64decode(response.json()["results"][0]["saliency"]["data"])
    return sent, answered, time.perf_counter()


def stages(trace: Trace, probe: Probe, client: Client) -> dict[str, float]:
    """Consecutive stages of one request in ms (indented names: parts of the stage above), then the total."""
    m, mine = trace.marks, probe.passes_of(trace)
    codec = {name: span for name, *span in trace.codec}
    sent, answered, parsed = client
    first, last = mine[0], mine[-1]
    extra = [p for p in mine if all(k != "method" for t, k, _ in p.parts if t is trace)]
    method = [p for p in mine if p not in extra]
    waited = sum(max(0.0, min(p.run[1], first.run[0]) - max(p.run[0], m["submit"])) for p in probe.passes)

    def busy(passes: list[Pass]) -> float:
        return sum(p.seconds for p in passes)

    out = {
        "HTTP in: send, uvicorn, read the body": m["body"] - sent,
        "JSON parse + validation, model lookup": codec["admit"][0] - m["body"],
        "decode: admit + decode (codec threads, hops)": m["submit"] - codec["admit"][0],
        "  of which admit + decode running on a codec thread": sum(codec[f][2] - codec[f][1] for f in ADMIT),
        "queue wait before the first pass": first.run[0] - m["submit"],
        "  of which the plans' build (device thread)": m["built"] - m["build"],
        "  of which other requests' passes": waited,
        f"prediction/baseline passes ({len(extra)}: {'+'.join(str(p.rows) for p in extra)} rows)": busy(extra),
        f"method passes ({len(method)}: {'+'.join(str(p.rows) for p in method)} rows)": busy(method),
        "  of which forward/backward": sum(p.model[1] - p.model[0] for p in method),
        "  (CPU: system time of every thread during them, page faults)": sum(p.cpu[1] for p in method),
        "between passes: consume, scheduling, others' passes": last.run[1] - first.run[0] - busy(mine),
        "last pass -> the result on the event loop": m["submitted"] - last.run[1],
        "result assembly + encode (render, codec thread)": codec["render"][3] - m["submitted"],
        "  of which render running on a codec thread": codec["render"][2] - codec["render"][1],
        "response build + JSON serialise": m["response_start"] - codec["render"][3],
        "HTTP out: send, the client receives": answered - m["response_start"],
        "client: JSON parse + base64 decode": parsed - answered,
        "total": parsed - sent,
        MODEL_ROW: sum(p.model[1] - p.model[0] for p in mine),
    }
    return {k: v * 1000 for k, v in out.items()}


def table(title: str, rows: list[dict[str, float]], baseline: tuple[str, float], note: str) -> str:
    """Each stage's median; a stage's name (its pass counts) is the first request's."""
    names = list(rows[0])
    med = {name: median([list(r.values())[i] for r in rows]) for i, name in enumerate(names)}
    total, model = med.pop("total"), med.pop(MODEL_ROW)
    top = sum(v for k, v in med.items() if not k.startswith(" "))
    lines = [f"#### {title}", "", "| stage | ms (median) |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in med.items()]
    lines += [
        f"| remainder (median total less the stages' medians) | {total - top:.1f} |",
        f"| **total, end to end** | **{total:.1f}** |",
        f"| {MODEL_ROW} | {model:.1f} |",
        f"| not the model (total less the above) | {total - model:.1f} |",
        f"| {baseline[0]} | {baseline[1]:.1f} |",
        f"| **total / baseline** | **{total / baseline[1]:.3f}** |",
    ]
    return "\n".join([*lines, "", note])


class OtherLoad:
    """The share of the machine's CPU that other processes used since it was made: the load average counts
    this process's own threads, so on a 2-core machine it says little about a benchmark's neighbours."""

    def __init__(self) -> None:
        self._at = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int]:
        ticks = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
        own = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
        return sum(ticks), ticks[3] + ticks[4], int(own[11]) + int(own[12])  # all, idle + iowait, this process

    def share(self) -> float:
        (total, idle, own), (total0, idle0, own0) = self._read(), self._at
        return max(0.0, ((total - total0) - (idle - idle0) - (own - own0)) / max(1, total - total0))

    def note(self) -> str:
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        return f"load average {load}; other processes used {self.share():.0%} of the CPU meanwhile"
