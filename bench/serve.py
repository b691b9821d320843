"""A server process for before/after comparisons: `python bench/serve.py CONFIG PORT`, run with cwd=TREE.

It serves `create_app(Settings(config=CONFIG))` of whichever `service` package comes first on the path, so
the same benchmark can measure two checkouts (the current tree and a `git worktree` of an older commit).
Settings other than the config come from SALIENCY_* variables. It adds one route, `GET /bench/raw?n=16`:
the raw fwd+bwd rate of the served model (the user's own, unprepared) at batch n, timed in this process, so a
throughput ratio pairs the server with a baseline from the same process (the same pass differs by up to 20%
between processes).

Run by path on purpose: `service` then comes from PYTHONPATH (the tree), while `common` is this folder's
common.py, the benchmark's own code whichever tree is measured.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Python put this folder first on the path; its profile.py would shadow the standard library's (torch needs it).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def load_common():
    spec = importlib.util.spec_from_file_location("bench_common", HERE / "common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def main(config: str, port: int) -> None:
    import uvicorn

    from service.main import create_app
    from service.settings import Settings

    common = load_common()
    MODEL, fwd_bwd, median, model_input, timed, user_model = (
        common.MODEL,
        common.fwd_bwd,
        common.median,
        common.model_input,
        common.timed,
        common.user_model,
    )
    app = create_app(Settings(config=Path(config)))

    @app.get("/bench/raw")
    def raw(n: int = 16, repeats: int = 3) -> dict[str, float]:
        """Images per second of `repeats` fwd+bwd passes at batch n (median), after a warm-up pass."""
        loaded = app.state.services.pool.get(MODEL)
        x, model = model_input(loaded, n), user_model(loaded)  # unprepared, in trees that prepare models
        fwd_bwd(model, x)
        seconds = median([timed(lambda: fwd_bwd(model, x), loaded.device) for _ in range(repeats)])
        return {"images_per_second": n / seconds, "seconds": seconds, "at": time.time()}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
