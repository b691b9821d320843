"""Fixtures of the command tests on a causal language model: tests/causal_lms.py's tiny GPT-2 in a models TOML,
its v1 JSON in this process (what the commands' numbers must agree with), and a live server of it."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from causal_lms import write_lm
from fastapi.testclient import TestClient
from servers import serving

from service.main import create_app
from service.settings import Settings


@pytest.fixture(scope="session")
def lm_config(tmp_path_factory) -> Path:
    return write_lm(tmp_path_factory.mktemp("cli-lm"))


@pytest.fixture(scope="session")
def lm_v1(lm_config) -> Iterator[Callable[[dict], dict]]:
    """lm_v1(body): POST /v1/models/tiny-lm/explain of this process's app on lm_config, its JSON."""
    with TestClient(create_app(Settings(config=lm_config, device="cpu"))) as client:

        def explain(body: dict) -> dict:
            response = client.post("/v1/models/tiny-lm/explain", json=body)
            assert response.status_code == 200, response.text
            return response.json()

        yield explain


@dataclass(frozen=True)
class LMServer:
    url: str

    def explain(self, body: dict) -> dict:
        """The server's own v1 JSON for the body: what the commands read through the client."""
        response = httpx.post(f"{self.url}/v1/models/tiny-lm/explain", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="session")
def lm_server(lm_config, tmp_path_factory) -> Iterator[LMServer]:
    """`saliency-service serve --config lm_config` over TCP (no API keys), started once per session."""
    log = tmp_path_factory.mktemp("lm-server") / "server.log"
    # Its INFO line per request could go to a stream an earlier command's logging set up and pytest has closed.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    with serving(["--config", str(lm_config)], clean, log, startup_s=180) as (_, url):
        yield LMServer(url)
