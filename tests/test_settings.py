"""List settings from the environment: '*', comma-separated or a JSON list; a bad value is one clear error."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


@pytest.mark.parametrize(
    "value, expected",
    [
        ("*", ["*"]),
        ("https://dash.example.com", ["https://dash.example.com"]),
        ("https://a.example.com, http://localhost:3000", ["https://a.example.com", "http://localhost:3000"]),
        ('["https://a.example.com", "https://b.example.com"]', ["https://a.example.com", "https://b.example.com"]),
        ("", []),
    ],
)
def test_cors_origins_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("SALIENCY_CORS_ORIGINS", value)
    assert Settings().cors_origins == expected


@pytest.mark.parametrize(
    "value, says",
    [
        ("https://dash.example.com/", "is not an origin"),
        ("dash.example.com", "is not an origin"),
        ('["https://a.example.com"', "not a JSON list"),
        ('[1, "https://a.example.com"]', "valid string"),
    ],
)
def test_a_bad_cors_value_is_a_validation_error_that_names_it(monkeypatch, value, says):
    monkeypatch.setenv("SALIENCY_CORS_ORIGINS", value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    (error,) = raised.value.errors()
    assert error["loc"][0] == "cors_origins" and says in error["msg"]


def test_key_hashes_from_the_environment(monkeypatch):
    digest = "ab" * 32
    monkeypatch.setenv("SALIENCY_API_KEY_HASHES", f"{digest}:ci, {digest.upper()}")
    assert Settings().api_key_hashes == [f"{digest}:ci", digest.upper()]
    monkeypatch.setenv("SALIENCY_API_KEY_HASHES", f'["{digest}:ci"]')
    assert Settings().api_key_hashes == [f"{digest}:ci"]


def test_security_and_log_defaults_keep_the_local_demo_open():
    settings = Settings(_env_file=None)
    assert settings.api_keys is None and settings.api_key_hashes == []
    assert (settings.metrics_auth, settings.docs, settings.log_format) == (False, "open", "text")
