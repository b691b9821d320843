"""`saliency-service create-key`: an API key, and the line that stores its hash."""

from __future__ import annotations

import argparse

from ..keys import check_name, hash_key, new_key


def create_key(args: argparse.Namespace) -> None:
    key = new_key()
    digest = hash_key(key)
    name = check_name(args.name) if args.name else f"key-{digest[:8]}"
    print(f"# API key {name!r}: give it to its client now; it is shown only once and not stored.")
    print(key)
    print("# The line for the keys file (SALIENCY_API_KEYS); it holds only the key's hash:")
    print(f"{digest}  {name}")
