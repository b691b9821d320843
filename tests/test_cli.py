"""The command line: create-key, one-line startup errors, the warning for an exposed server without keys, and
explain with its progress bar."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from PIL import Image

from service import cli, explain_command, logs
from service.demo import shapes
from service.keys import ApiKeys, hash_key


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_create_key_prints_the_key_once_and_the_line_that_stores_its_hash(capsys, tmp_path):
    cli.main(["create-key", "--name", "dashboard"])
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    key, entry = lines
    assert len(key) >= 40 and key not in entry
    digest, name = entry.split()
    assert (digest, name) == (hash_key(key), "dashboard")
    (tmp_path / "keys.txt").write_text(entry + "\n")
    assert ApiKeys.load(tmp_path / "keys.txt").name_of(key) == "dashboard"


def test_create_key_makes_a_new_key_each_time(capsys):
    cli.main(["create-key"])
    cli.main(["create-key"])
    keys = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")][::2]
    assert len(set(keys)) == 2


@pytest.mark.parametrize(
    "env, says",
    [
        ({"SALIENCY_CORS_ORIGINS": "https://dash.example.com/app"}, "error: SALIENCY_CORS_ORIGINS: "),
        ({"SALIENCY_CORS_ORIGINS": '["https://a.example.com"'}, "error: SALIENCY_CORS_ORIGINS: not a JSON list"),
        ({"SALIENCY_API_KEYS": "/nonexistent/keys.txt"}, "error: cannot read the API keys file"),
        ({"SALIENCY_API_KEY_HASHES": "my-secret-key"}, "error: SALIENCY_API_KEY_HASHES entry 1: not a SHA-256"),
    ],
)
def test_serve_with_a_bad_setting_exits_with_one_line(env, says):
    result = run_cli("serve", "--port", "0", **env)
    assert result.returncode != 0
    assert result.stderr.startswith(says) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "my-secret-key" not in result.stderr


@pytest.fixture
def dry_serve(monkeypatch):
    """serve() up to the point where uvicorn would listen; the pytest process keeps its logging."""
    import uvicorn

    async def no_serving(self, sockets=None):
        return None

    monkeypatch.setattr(uvicorn.Server, "serve", no_serving)
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
    for name in [k for k in os.environ if k.startswith("SALIENCY_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("host, warns", [("0.0.0.0", True), ("::", True), ("127.0.0.1", False), ("localhost", False)])
def test_serve_warns_when_others_can_reach_it_without_keys(dry_serve, caplog, host, warns):
    with caplog.at_level(logging.WARNING, logger="service"):
        cli.main(["serve", "--host", host, "--port", "0"])
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "NO API KEYS" in r.getMessage()]
    assert len(warnings) == int(warns)


def test_serve_does_not_warn_with_keys(dry_serve, caplog, monkeypatch):
    monkeypatch.setenv("SALIENCY_API_KEY_HASHES", hash_key("k"))
    with caplog.at_level(logging.WARNING, logger="service"):
        cli.main(["serve", "--host", "0.0.0.0", "--port", "0"])
    assert not [r for r in caplog.records if "NO API KEYS" in r.getMessage()]


def shape_png(path):
    Image.fromarray(shapes.generate(1, seed=3).images[0]).save(path)
    return path


def test_explain_shows_progress_and_writes_the_overlay(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    image, out = shape_png(tmp_path / "shape.png"), tmp_path / "overlay.png"
    method = '{"name": "integrated_gradients", "steps": 30}'
    cli.main(["explain", str(image), "--method", method, "--target", "1", "--progress", "-o", str(out)])
    summary = json.loads(capsys.readouterr().out)
    assert summary["target"]["index"] == 1 and summary["method"]["steps"] == 30
    assert Image.open(out).size == (96, 96) and summary["overlay"] == str(out)


def test_explain_progress_bar_counts_every_pass(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    image = shape_png(tmp_path / "shape.png")
    method = '{"name": "integrated_gradients", "steps": 30}'
    cli.main(["explain", str(image), "--method", method, "--progress", "-o", str(tmp_path / "o.png")])
    err = capfd.readouterr().err
    assert "32/32" in err and "pass" in err  # 30 steps + the image's and the baseline's forward


@pytest.mark.parametrize("target", ["²", "9" * 5000, "-3"])
def test_explain_refuses_a_bad_target_in_one_line(tmp_path, target):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(shape_png(tmp_path / "s.png")), "--target", target])
    message = str(exit_info.value.code)
    assert message.startswith("error: unknown label") and "\n" not in message  # not a crash (int("²") raised)


def test_sse_events_follow_the_event_stream_format():
    lines = [": a comment", "event: progress", 'data: {"done": 1}', "", "", "data:a", "data: b", "", "event: cut"]
    assert list(explain_command.sse_events(lines)) == [("progress", '{"done": 1}'), ("message", "a\nb")]


@pytest.mark.parametrize(
    "args, says",
    [
        (["/nonexistent/shape.png"], "error: cannot read /nonexistent/shape.png: "),
        (["IMAGE", "--method", "{integrated_gradients}"], "error: --method: not valid JSON: "),
        (["IMAGE", "--url", "http://127.0.0.1:9"], "error: http://127.0.0.1:9/v1/models/shapes/explain: "),
    ],
)
def test_explain_mistakes_are_one_line(tmp_path, args, says):
    image = str(shape_png(tmp_path / "s.png"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", *(image if a == "IMAGE" else a for a in args)])
    message = str(exit_info.value.code)
    assert message.startswith(says) and "\n" not in message, message


API_KEY = "cli-test-key"


@pytest.fixture(scope="module")
def server_url():
    """`saliency-service serve` with the demo models and one API key (API_KEY)."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env={**clean, "OMP_NUM_THREADS": "1", "SALIENCY_API_KEY_HASHES": hash_key(API_KEY)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # importing torch on a busy 2-core machine is slow
        while True:
            try:
                urllib.request.urlopen(f"{url}/readyz", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_remote_explain_follows_the_progress_events_and_matches_local(tmp_path, capfd, server_url, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("SALIENCY_API_KEY", API_KEY)
    image = shape_png(tmp_path / "shape.png")
    method = '{"name": "integrated_gradients", "steps": 200}'
    common = ["explain", str(image), "--method", method, "--progress"]
    reports, report = [], explain_command.ProgressBar.report

    def recorded(bar, done, total):
        reports.append(done)
        report(bar, done, total)

    monkeypatch.setattr(explain_command.ProgressBar, "report", recorded)
    cli.main([*common, "--url", server_url, "-o", str(tmp_path / "remote.png")])
    remote, err = capfd.readouterr()
    assert len(set(reports)) >= 3 and reports == sorted(reports), f"a few progress events, in order: {reports}"
    assert "202/202" in err, "the bar should reach the total the server's progress events announce"
    cli.main([*common, "-o", str(tmp_path / "local.png")])
    local = capfd.readouterr().out
    assert {**json.loads(remote), "overlay": None} == {**json.loads(local), "overlay": None}
    assert (tmp_path / "remote.png").read_bytes() == (tmp_path / "local.png").read_bytes()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--method", "lime", "--api-key", API_KEY], "error: unknown_method: unknown method 'lime'"),
        (["--api-key", "not-the-key"], "error: unauthorized: "),
        ([], "error: unauthorized: "),
    ],
)
def test_remote_errors_are_one_line(tmp_path, server_url, monkeypatch, args, says):
    monkeypatch.delenv("SALIENCY_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(shape_png(tmp_path / "s.png")), "--url", server_url, *args])
    message = str(exit_info.value.code)
    assert message.startswith(says) and "\n" not in message, message
