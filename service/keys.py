"""API keys: the server stores only SHA-256 hashes of keys, each with a name for logs and metrics.

A keys file holds one `<sha256 hex> [name]` per line (`#` starts a comment); the inline setting holds
`<sha256 hex>[:name]` entries. Framework-free, so that `saliency-service create-key` needs no FastAPI or torch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HASH = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a metrics label value and a log field: nothing a client chose


class KeysError(ValueError):
    """Keys that cannot be used; the message is one line, fit for a startup error."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise KeysError(f"key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def parse_entry(digest: str, name: str | None, where: str) -> tuple[str, str]:
    digest = digest.lower()
    if not HASH.fullmatch(digest):
        # Never echo the value: it may be a key pasted where its hash belongs.
        raise KeysError(
            f"{where}: not a SHA-256 hex digest (64 hex characters); store the hash, not the key "
            "(`saliency-service create-key` prints the line to add)"
        )
    try:
        return digest, check_name(name or f"key-{digest[:8]}")
    except KeysError as exc:
        raise KeysError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ApiKeys:
    """(hash, name) pairs; empty means the API is open."""

    entries: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for _, name in self.entries)

    def name_of(self, key: str) -> str | None:
        """The name of the stored key that `key` is, or None. Constant time over the stored keys."""
        digest = hash_key(key).encode()
        found = None
        for stored, name in self.entries:
            # Every entry is compared, with no early exit, so the time says nothing about which one matched.
            if hmac.compare_digest(digest, stored.encode()):
                found = name
        return found

    @classmethod
    def load(cls, file: Path | None, inline: Iterable[str] = ()) -> ApiKeys:
        entries: list[tuple[str, str]] = []
        if file is not None:
            try:
                text = Path(file).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise KeysError(f"cannot read the API keys file {file}: {exc}") from None
            lines = [(n, line.split("#", 1)[0].split(None, 1)) for n, line in enumerate(text.splitlines(), 1)]
            for number, fields in lines:
                if fields:
                    name = fields[1].strip() if len(fields) > 1 else None
                    entries.append(parse_entry(fields[0], name, f"{file}:{number}"))
            if not entries:
                # An empty file must not quietly open the API.
                raise KeysError(f"the API keys file {file} holds no keys")
        for number, entry in enumerate(inline, 1):
            digest, _, name = entry.strip().partition(":")
            entries.append(parse_entry(digest, name or None, f"SALIENCY_API_KEY_HASHES entry {number}"))
        names: dict[str, str] = {}
        for digest, name in entries:
            if names.setdefault(digest, name) != name:
                raise KeysError(f"one key hash is listed under two names, {names[digest]!r} and {name!r}")
        return cls(tuple(dict.fromkeys(entries)))
