"""Load-balancer checks shared by docker/smoke.sh and tests/deploy/test_nginx_lb.py (standard library only).

    python3 docker/smoke_client.py nginx-conf --replica 127.0.0.1:8001 --replica 127.0.0.1:8002 --listen 8000 --dir D
    python3 docker/smoke_client.py check --url http://127.0.0.1:8000 --requests 20 --kill-command "..."

`nginx-conf` writes D/nginx.conf: docker/nginx/nginx.conf with the replicas' names replaced by the given
addresses, every file nginx writes moved into D, and an X-Upstream response header naming the replica(s) that
answered. `check` sends explain requests through nginx, checks every answer, checks that every replica served,
then runs the kill command while requests are in flight and checks that all of them still succeed.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import math
import random
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NGINX_CONF = Path(__file__).resolve().parent / "nginx" / "nginx.conf"
REPLICA_LINE = re.compile(r"^(\s*server\s+)saliency-(\d+):\d+", re.MULTILINE)


def derive_nginx_conf(replicas: list[str], listen: str, workdir: Path, source: Path = NGINX_CONF) -> str:
    """The compose nginx config with the same upstream and proxy directives, for an nginx run by hand."""
    text = source.read_text()
    found = sorted({int(n) for _, n in REPLICA_LINE.findall(text)})
    if found != list(range(1, len(replicas) + 1)):
        raise ValueError(f"{source} names replicas {found}; {len(replicas)} addresses given")
    text = REPLICA_LINE.sub(lambda m: m.group(1) + replicas[int(m.group(2)) - 1], text)
    text, listens = re.subn(r"listen\s+8080;", f"listen {listen};", text)
    text, logs = re.subn(r"access_log\s+\S+\s+upstream;", f"access_log {workdir}/access.log upstream;", text)
    text, proxies = re.subn(
        r"(proxy_pass http://saliency;)", r"\1\n            add_header X-Upstream $upstream_addr always;", text
    )
    if (listens, logs, proxies) != (1, 1, 1):
        raise ValueError(f"{source}: expected one listen 8080, one access_log ... upstream and one proxy_pass")
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir}/{kind}_temp;\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temp_paths, 1)
    # Workers run as this user (nginx ignores `user` when not started as root): they write the temp files.
    head = f"user {getpass.getuser()};\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log info;\n"
    return head + text


def png(width: int, height: int, seed: int = 0) -> bytes:
    """An RGB PNG of random pixels."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def get_json(url: str, timeout: float = 10) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def explain(base: str, model: str, image: bytes, method: object = "gradient", timeout: float = 60) -> tuple:
    """(status, JSON body or error text, X-Upstream header) of one explain request."""
    body = json.dumps({"images": [base64.b64encode(image).decode()], "method": method}).encode()
    request = urllib.request.Request(
        f"{base}/v1/models/{model}/explain", body, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response), response.headers.get("X-Upstream", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), exc.headers.get("X-Upstream", "")


def check_explanation(status: int, body: object, model: str, size: tuple[int, int]) -> list[float]:
    """Raises AssertionError unless this is a well-formed explanation of one image; returns the saliency map."""
    assert status == 200, f"status {status}: {body}"
    assert isinstance(body, dict) and body["model"] == model, body
    (result,) = body["results"]
    saliency = result["saliency"]
    assert saliency["shape"] == list(size), saliency["shape"]
    assert saliency["dtype"] == "float32", saliency["dtype"]
    values = array("f", base64.b64decode(saliency["data"]))
    if sys.byteorder == "big":
        values.byteswap()
    assert len(values) == size[0] * size[1], len(values)
    assert all(math.isfinite(v) for v in values), "non-finite saliency"
    assert math.isclose(min(values), saliency["min"], rel_tol=1e-5, abs_tol=1e-6), (min(values), saliency["min"])
    assert math.isclose(max(values), saliency["max"], rel_tol=1e-5, abs_tol=1e-6), (max(values), saliency["max"])
    assert result["predictions"] and 0 <= result["target"]["index"], result["target"]
    return list(values)


def served_by(upstream: str) -> list[str]:
    """The replicas nginx tried for one request, in order ("a:1, b:2" after a retry)."""
    return [part.strip() for part in upstream.split(",") if part.strip()]


def run_checks(
    base: str, requests: int, kill_command: str | None, slow_steps: int = 256, kill_after: float = 0.3, workers: int = 4
) -> dict:
    models = get_json(f"{base}/v1/models")
    model, size = models[0]["name"], tuple(models[0]["input_size"])
    image = png(size[1], size[0], seed=1)

    def one(method: object = "gradient") -> tuple[list[str], list[float]]:
        status, body, upstream = explain(base, model, image, method)
        return served_by(upstream), check_explanation(status, body, model, size)

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        first = list(pool.map(lambda _: one(), range(requests)))
    replicas = sorted({tried[-1] for tried, _ in first})
    print(f"{requests} explain requests ({model}, {size[0]}x{size[1]}) in {time.monotonic() - started:.1f} s: all 200")
    for replica in replicas:
        print(f"  {replica} served {sum(tried[-1] == replica for tried, _ in first)}")
    # The same image every time: with the same weights, every replica must give the same map.
    reference = first[0][1]
    scale = (max(reference) - min(reference)) or 1.0
    spread = max(max(abs(a - b) for a, b in zip(values, reference, strict=True)) for _, values in first) / scale
    print(f"  largest difference between the maps, relative to their range: {spread:.2e}")
    report = {"model": model, "replicas": replicas, "spread": spread}
    if kill_command is None:
        return report

    # Slow requests (integrated gradients) so that some are in flight on the replica when it dies.
    slow = {"name": "integrated_gradients", "steps": slow_steps}
    with ThreadPoolExecutor(workers) as pool:
        in_flight = [pool.submit(one, slow) for _ in range(workers)]
        time.sleep(kill_after)
        pending = sum(not f.done() for f in in_flight)
        subprocess.run(kill_command, shell=True, check=True)
        print(f"ran {kill_command!r} with {pending} of {workers} slow requests in flight")
        during = [f.result() for f in in_flight]
    after = [one() for _ in range(requests // 2)]
    retried = [tried for tried, _ in during + after if len(tried) > 1]
    survivors = sorted({tried[-1] for tried, _ in after})
    print(f"{len(during)} in flight + {len(after)} after the kill: all 200, {len(retried)} retried on another replica")
    print(f"  served after the kill by: {', '.join(survivors)}")
    report.update(in_flight=pending, retried=len(retried), survivors=survivors)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser("nginx-conf")
    conf.add_argument("--replica", action="append", required=True, help="host:port, once per replica")
    conf.add_argument("--listen", required=True, help="what nginx listens on, e.g. 127.0.0.1:8080")
    conf.add_argument("--dir", type=Path, required=True, help="nginx.conf, logs, pid and temp files go here")
    check = sub.add_parser("check")
    check.add_argument("--url", required=True)
    check.add_argument("--requests", type=int, default=20)
    check.add_argument("--kill-command", help="shell command that kills one replica")
    check.add_argument("--slow-steps", type=int, default=256, help="integrated-gradients steps of in-flight requests")
    check.add_argument("--max-spread", type=float, help="fail when replicas' maps differ more (relative to range)")
    args = parser.parse_args(argv)
    if args.command == "nginx-conf":
        args.dir.mkdir(parents=True, exist_ok=True)
        (args.dir / "nginx.conf").write_text(derive_nginx_conf(args.replica, args.listen, args.dir.resolve()))
        return
    report = run_checks(args.url.rstrip("/"), args.requests, args.kill_command, args.slow_steps)
    problems = []
    if len(report["replicas"]) < 2:
        problems.append(f"only {report['replicas']} served: nginx did not balance")
    if args.max_spread is not None and report["spread"] > args.max_spread:
        problems.append(f"maps of the same image differ by {report['spread']:.2e} of their range")
    if args.kill_command and len(report["survivors"]) != 1:
        problems.append(f"after the kill, served by {report['survivors']}: expected one replica")
    if problems:
        sys.exit("FAILED: " + "; ".join(problems))
    print("OK")


if __name__ == "__main__":
    main()
