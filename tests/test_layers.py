"""The package's layering: dependencies point down service/ only (STYLE.md's order), and no package imports
one above it, either when imported (sys.modules) or anywhere in its source (an `ast` import graph)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"

# Top to bottom: a package may import those after it in this list, never those before it. The small shared
# modules (settings, errors, keys, logs, metrics) are at the bottom; main and cli are entry points on top.
ORDER = ["main", "cli", "api", "ui", "core", "codecs", "explainers", "engine", "models", "demo", "shared"]
SHARED = {"settings", "errors", "keys", "logs", "metrics", "__init__"}
# Exceptions, each with its reason. cli's serve command starts the app (main), and only that command.
ALLOWED = {("cli", "main")}


def layer(module: str) -> str:
    """service.api.v1.explain -> "api"; service.settings -> "shared"."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return "shared" if top in SHARED else top


def imports_of(path: Path) -> set[str]:
    """The service modules a file imports, relative imports resolved, lazy (in-function) imports included."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("service")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
                found |= set(names) | {target}
            elif node.module and node.module.startswith("service"):
                found.add(node.module)
    return found


def edges() -> set[tuple[str, str, str]]:
    """(importing layer, imported layer, file) for every import across layers."""
    out = set()
    for path in SERVICE.rglob("*.py"):
        mine = layer(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"))
        for target in imports_of(path):
            theirs = layer(target)
            if theirs != mine and theirs in ORDER and target != "service":
                out.add((mine, theirs, str(path.relative_to(ROOT))))
    return out


def test_every_package_has_its_place_in_the_order():
    packages = {p.name for p in SERVICE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SERVICE.glob("*.py")}
    assert packages | (modules - SHARED) <= set(ORDER), "a new package needs its place in ORDER"


def test_imports_point_down_the_layers_only():
    upward = sorted(
        f"{file}: {mine} imports {theirs}"
        for mine, theirs, file in edges()
        if ORDER.index(theirs) < ORDER.index(mine) and (mine, theirs) not in ALLOWED
    )
    assert not upward


def test_framework_imports_stay_in_the_http_layer():
    """FastAPI and Starlette in service/api/ and the app factory only; service.api from service/api/ only
    (and the app factory, which mounts it)."""
    offenders = []
    for path in SERVICE.rglob("*.py"):
        relative = path.relative_to(SERVICE)
        if relative.parts[0] == "api" or relative == Path("main.py"):
            continue
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
        if any(name.split(".")[0] in ("fastapi", "starlette") for name in names):
            offenders.append(str(relative))
        if any(target.startswith("service.api") for target in imports_of(path)):
            offenders.append(f"{relative} (service.api)")
    assert not offenders


def imported_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        # A second protocol sits beside v1 without copying the explain flow: the core knows neither.
        ("service.core", {"fastapi", "starlette", "service.api"}),
        ("service.core.sanity", {"fastapi", "starlette", "service.api"}),
        # The engine runs plans; which methods, codecs and requests made them is the layers above.
        ("service.engine", {"service.explainers", "service.codecs", "service.core", "service.api"}),
        ("service.engine.runner", {"service.explainers", "service.codecs", "service.core", "service.api"}),
        # The models layer loads and prepares models; explaining them is the layer above.
        ("service.models", {"service.explainers", "service.engine", "service.core", "service.codecs"}),
        # Text support (transformers) is imported only when a text model is configured.
        ("service.main", {"transformers", "tokenizers", "service.codecs.text"}),
        # The CLI's --version, --url and one-line mistakes answer without waiting seconds for torch.
        ("service.cli", {"torch", "service.core", "service.api", "fastapi"}),
        # The client is its own distribution: it imports nothing of the server.
        ("saliency_client", {"torch", "fastapi", "starlette", "service"}),
    ],
)
def test_a_layer_does_not_import_the_layers_above_it(module, forbidden):
    assert not imported_by(module) & forbidden
