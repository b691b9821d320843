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

import service
from service import cli, logs
from service.cli import explain as explain_command
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
    args = ["--method", "integrated_gradients", "--param", "steps=30", "--param", "baseline=blur"]
    cli.main(["explain", str(image), *args, "--progress", "-o", str(tmp_path / "o.png")])
    out, err = capfd.readouterr()
    assert "32/32" in err and "pass" in err  # 30 steps + the image's and the baseline's forward
    assert json.loads(out)["method"] | {"steps": 30, "baseline": "blur"} == json.loads(out)["method"]


def test_params_are_json_where_they_parse_else_strings():
    spec = explain_command.method_spec(
        '{"name": "occlusion", "window": 8}', ["stride=4", "baseline=mean", 'label="7"', "seed=1e3", "x = [1, 2]"]
    )
    assert spec == {
        "name": "occlusion",
        "window": 8,
        "stride": 4,
        "baseline": "mean",
        "label": "7",
        "seed": 1000.0,
        "x": [1, 2],
    }


def test_version():
    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"saliency-service {service.__version__}\n")


@pytest.mark.parametrize(
    "args, says",
    [
        (["audit", "/nonexistent", "--model", "shapes"], "error: cannot read /nonexistent: No such file or directory"),
        (["audit", ".", "--model", "shapes", "--region", "1,2"], "error: --region '1,2': expected four integers"),
        (["demo-images", "/nonexistent/out", "--n", "0"], "error: --n 0: between 1 and 5000\n"),
    ],
)
def test_audit_and_demo_data_mistakes_are_one_line(args, says):
    # tests/audit/test_command.py runs the audit itself; this is the installed command's exit.
    result = run_cli(*args)
    assert result.returncode == 1 and result.stderr.startswith(says) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    listed = run_cli("--help").stdout
    assert all(f"    {command} " in listed for command in ("audit", "demo-images", "demo-reviews", "demo-prompts"))


def test_help_lists_the_methods_and_colormaps():
    from service.codecs.options import COLORMAPS
    from service.explainers import default_registry

    result = run_cli("explain", "--help")
    assert result.returncode == 0, result.stderr
    methods = result.stdout.split("methods (--method NAME)")[1]
    listed = [line.split()[0] for line in methods.splitlines()[1:] if line.startswith("  ")]
    assert listed == default_registry().names()
    assert "  integrated_gradients  steps, rule, baseline, blur_sigma, seed\n" in methods
    assert f"colormaps (--colormap): {', '.join(COLORMAPS)}" in result.stdout


def test_explain_a_folder_writes_an_overlay_per_image(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = tmp_path / "images"
    folder.mkdir()
    for name, seed in [("b.png", 4), ("a.png", 3)]:
        Image.fromarray(shapes.generate(1, seed=seed).images[0]).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    cli.main(["explain", str(folder), "--method", "gradient", "--progress", "-o", str(out)])
    stdout, stderr = capfd.readouterr()
    summaries = json.loads(stdout)
    assert [s["image"] for s in summaries] == [str(folder / "a.png"), str(folder / "b.png")]
    assert [s["overlay"] for s in summaries] == [str(out / "a.png"), str(out / "b.png")]
    assert all(Image.open(s["overlay"]).size == (96, 96) for s in summaries)
    assert "2/2" in stderr and "image" in stderr
    one = tmp_path / "one.png"
    cli.main(["explain", str(folder / "b.png"), "--method", "gradient", "-o", str(one)])
    assert json.loads(capfd.readouterr().out)["target"] == summaries[1]["target"]
    assert one.read_bytes() == (out / "b.png").read_bytes()


@pytest.mark.parametrize(
    "args, says",
    [
        (["/nonexistent/shape.png"], "error: cannot read /nonexistent/shape.png: No such file or directory\n"),
        (["EMPTY"], "error: EMPTY: no images in the folder (looked for .png, "),
        (["IMAGE", "--param", "=3"], "error: --param '=3': expected KEY=VALUE, such as steps=32\n"),
    ],
)
def test_mistakes_end_the_process_with_one_line_and_no_traceback(tmp_path, args, says):
    (tmp_path / "empty").mkdir()
    names = {"IMAGE": str(shape_png(tmp_path / "s.png")), "EMPTY": str(tmp_path / "empty")}
    result = run_cli("explain", *(names.get(a, a) for a in args))
    says = says.replace("EMPTY", names["EMPTY"])
    assert result.returncode == 1 and result.stderr.startswith(says) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("target", ["²", "9" * 5000, "-3"])
def test_explain_refuses_a_bad_target_in_one_line(tmp_path, target):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(shape_png(tmp_path / "s.png")), "--target", target])
    message = str(exit_info.value.code)
    assert message.startswith("error: unknown label") and "\n" not in message  # not a crash (int("²") raised)


@pytest.mark.parametrize(
    "args, says",
    [
        (["/nonexistent/shape.png"], "error: cannot read /nonexistent/shape.png: "),
        (["IMAGE", "--method", "{integrated_gradients}"], "error: --method: not valid JSON: "),
        (["IMAGE", "--url", "http://127.0.0.1:9"], "error: connection_error: cannot connect to http://127.0.0.1:9: "),
        (["IMAGE", "--param", "steps"], "error: --param 'steps': expected KEY=VALUE"),
        (["IMAGE", "--method", '{"steps": 3}'], "error: method needs a 'name' string"),
        (["IMAGE", "--colormap", "rainbow"], "error: output.colormap: Input should be 'jet', "),
    ],
)
def test_explain_mistakes_are_one_line(tmp_path, args, says):
    image = str(shape_png(tmp_path / "s.png"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", *(image if a == "IMAGE" else a for a in args)])
    message = str(exit_info.value.code)
    assert message.startswith(says) and "\n" not in message, message


@pytest.fixture
def server_url(demo_server, monkeypatch):
    """The session's demo server (tests/conftest.py); its key in $SALIENCY_API_KEY, where the CLI looks."""
    monkeypatch.setenv("SALIENCY_API_KEY", demo_server.api_key)
    return demo_server.url


def test_remote_explain_of_several_images(tmp_path, capfd, server_url, monkeypatch):
    for folder, seed in [("a", 3), ("b", 4)]:
        (tmp_path / folder).mkdir()
        Image.fromarray(shapes.generate(1, seed=seed).images[0]).save(tmp_path / folder / "shape.png")
    images, out = [str(tmp_path / "a" / "shape.png"), str(tmp_path / "b")], tmp_path / "out"
    cli.main(["explain", *images, "--url", server_url, "--method", "occlusion", "--param", "stride=16", "-o", str(out)])
    summaries = json.loads(capfd.readouterr().out)
    assert [s["overlay"] for s in summaries] == [str(out / "shape.png"), str(out / "shape-2.png")]  # none overwritten
    assert [s["method"]["stride"] for s in summaries] == [16, 16]
    assert (out / "shape.png").read_bytes() != (out / "shape-2.png").read_bytes()


def test_remote_explain_follows_the_progress_events_and_matches_local(tmp_path, capfd, server_url, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    image = shape_png(tmp_path / "shape.png")
    common = ["explain", str(image), "--method", "integrated_gradients", "--param", "steps=200", "--progress"]
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
        (["--method", "lime", "--api-key", "KEY"], "error: unknown_method: unknown method 'lime'"),
        (["--model", "nope", "--api-key", "KEY"], "error: unknown_model: unknown model 'nope'"),
        (["--param", "steps=0", "--api-key", "KEY"], "error: invalid_parameter: gradcam: steps: "),
        (["--api-key", "not-the-key"], "error: unauthorized: "),
        ([], "error: unauthorized: "),
    ],
)
def test_remote_errors_are_one_line(tmp_path, server_url, demo_server, monkeypatch, args, says):
    monkeypatch.delenv("SALIENCY_API_KEY")
    args = [demo_server.api_key if a == "KEY" else a for a in args]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(shape_png(tmp_path / "s.png")), "--url", server_url, *args])
    message = str(exit_info.value.code)
    assert message.startswith(says) and "\n" not in message, message
