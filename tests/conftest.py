"""Fixtures every test folder shares."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from servers import serving

from service.models import ModelSpec


def png_16_bit(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG of uint16 pixels, (H, W) grey or (H, W, 3) RGB: Pillow writes no 16-bit RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    assert pixels.dtype == np.uint16 and (pixels.ndim == 2 or pixels.shape[2] == 3)
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = pixels.astype(">u2").reshape(height, -1)
    scanlines = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def png16() -> Callable[[np.ndarray], bytes]:
    """png_16_bit(uint16 pixels, (H, W) or (H, W, 3)) -> PNG bytes at 16 bits per sample."""
    return png_16_bit


DEMO = "python:service.demo.net:shapes_cnn"  # the demo CNN: small, and the same initial weights every time


def entry(name: str = "demo", **fields) -> dict:
    return {"name": name, "architecture": DEMO, "num_classes": 4, "input_size": [32, 32], **fields}


@pytest.fixture
def make_spec() -> Callable[..., ModelSpec]:
    """make_spec(name="demo", **fields): a ModelSpec of the demo CNN at 32x32 unless fields say otherwise."""
    return lambda name="demo", **fields: ModelSpec(**entry(name, **fields))


@pytest.fixture
def make_entry() -> Callable[..., dict]:
    """make_entry(name="demo", **fields): one [[models]] entry as a dict."""
    return entry


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a movie film plot actor was is not very really great good terrible bad boring fun and but i it this "
    "liked hated loved , . ! < > script & \" ' ##s ##ed ##ing"
).split()


def write_tiny_bert(folder, num_labels: int = 2, seed: int = 0, hidden: int = 16) -> None:
    """A tiny random BERT classifier and its WordPiece tokenizer, saved as transformers saves them."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    # transformers 5: BertTokenizer is the fast tokenizer, and takes its vocabulary as a dict.
    vocab = {token: i for i, token in enumerate(TINY_VOCAB)}
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(TINY_VOCAB),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
        num_labels=num_labels,
        id2label={i: name for i, name in enumerate(["negative", "positive", "neutral"][:num_labels])},
        label2id={name: i for i, name in enumerate(["negative", "positive", "neutral"][:num_labels])},
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        BertForSequenceClassification(config).eval().save_pretrained(folder)


@pytest.fixture(scope="session")
def write_bert():
    """write_tiny_bert, for tests that need a directory of their own (other label counts)."""
    return write_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """The directory of a tiny random BERT sentiment classifier (2 labels) with its tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    write_tiny_bert(folder)
    return folder


DEMO_SERVER_KEY = "demo-server-test-key"


@dataclass(frozen=True)
class DemoServer:
    url: str
    api_key: str  # the server refuses /v1 requests without it


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory) -> Iterator[DemoServer]:
    """`saliency-service serve` over TCP with the bundled demo models (service/demo/models.toml) and one API
    key, started once per session; its log is in the failure message."""
    from service.keys import hash_key

    log = tmp_path_factory.mktemp("demo-server") / "server.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SALIENCY_")}
    env = {**clean, "SALIENCY_API_KEY_HASHES": hash_key(DEMO_SERVER_KEY)}
    # Importing torch and transformers on a busy 2-core machine is slow.
    with serving([], env, log, startup_s=180) as (_, url):
        yield DemoServer(url, DEMO_SERVER_KEY)
