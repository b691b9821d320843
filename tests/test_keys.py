"""API keys: files and inline hashes parse with names; bad entries fail in one line without echoing them;
a presented key is checked against every stored hash in constant time."""

from __future__ import annotations

import pytest

from service import keys
from service.keys import ApiKeys, KeysError, hash_key

A, B = hash_key("key-a"), hash_key("key-b")


def test_a_keys_file_with_names_comments_and_blank_lines(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"# team keys\n{A}  dashboard   # since May\n\n{B.upper()}\n")
    loaded = ApiKeys.load(path)
    assert loaded.name_of("key-a") == "dashboard"
    assert loaded.name_of("key-b") == f"key-{B[:8]}"
    assert loaded.name_of("key-c") is None and loaded.name_of("") is None
    assert loaded.names == {"dashboard", f"key-{B[:8]}"}


def test_inline_hashes_add_to_the_file(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"{A} dashboard\n")
    loaded = ApiKeys.load(path, [f"{B}:ci"])
    assert (loaded.name_of("key-a"), loaded.name_of("key-b")) == ("dashboard", "ci")
    assert not ApiKeys.load(None, []) and ApiKeys.load(None, [B])


def test_two_hashes_may_share_a_name_while_a_key_rotates():
    loaded = ApiKeys.load(None, [f"{A}:ci", f"{B}:ci"])
    assert loaded.name_of("key-a") == loaded.name_of("key-b") == "ci"


@pytest.mark.parametrize(
    "text, says",
    [
        ("sk-live-this-is-the-key-itself\n", "keys.txt:1: not a SHA-256 hex digest"),
        (f"{A} bad/name\n", "keys.txt:1: key name"),
        (f"{A} a\n{A} b\n", "two names"),
        ("# nothing but a comment\n\n", "holds no keys"),
    ],
)
def test_a_bad_keys_file_is_one_line_that_never_echoes_a_key(tmp_path, text, says):
    path = tmp_path / "keys.txt"
    path.write_text(text)
    with pytest.raises(KeysError) as raised:
        ApiKeys.load(path)
    assert says in str(raised.value) and "\n" not in str(raised.value)
    assert "sk-live" not in str(raised.value)


def test_a_missing_keys_file_is_an_error_not_an_open_api(tmp_path):
    with pytest.raises(KeysError, match="cannot read"):
        ApiKeys.load(tmp_path / "absent.txt")


def test_every_stored_hash_is_compared_whichever_matches(monkeypatch):
    compared = []

    def compare(a, b):
        compared.append(b)
        return a == b

    monkeypatch.setattr(keys.hmac, "compare_digest", compare)
    loaded = ApiKeys.load(None, [A, B, hash_key("key-c")])
    for presented in ("key-a", "key-c", "nobody"):
        compared.clear()
        loaded.name_of(presented)
        assert len(compared) == 3, presented  # no early exit on the first match
