"""Causal LMs end to end (issue 22's timings per method): each method's HTTP explanation of a prompt's answer
over Captum's LLM attribution of the same prompt, answer and settings, in this process on the same weights;
and generation over HTTP over transformers' `generate` (both decode with a KV cache; ours keeps it per
generation between scheduler passes, models/kv_cache.py), and ours with `kv_cache = false` (every step
recomputes the sequence) over transformers' generate, to show what the cache buys.

The model is a GPT-2 (transformers' GPT2Config, random weights, 6 layers of 384, a 2,000-word vocabulary) saved
as a local directory, as a user's would be; a 24-word prompt and an 8-token answer. Captum runs with its
defaults but the baseline token (the pad token, as ours) and, for occlusion, `use_cached_outputs=False` (its
cached path disagrees with the model on transformers 5; tests/explainers/test_causal_oracles.py). The quick
mode shrinks the model and the steps, only so the script cannot rot.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import torch

from .common import MODEL, Context, Report, Row, median, timed

METHODS: dict[str, dict] = {
    "gradient": {},
    "input_x_gradient": {},
    "integrated_gradients": {"steps": 16},
    "occlusion": {},
}
WORDS = 2000


def build(folder: Path, quick: bool) -> tuple[Path, object, object]:
    """The model directory, the model and its tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = ["<pad>", "<eos>", *(f"w{i}" for i in range(WORDS))]
    table = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<pad>"))
    table.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=table, pad_token="<pad>", eos_token="<eos>")
    layers, width = (2, 64) if quick else (6, 384)
    config = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=width, n_layer=layers, n_head=4,
                        bos_token_id=1, eos_token_id=1, pad_token_id=0)  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    directory = folder / "bench-lm"
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory, model, tokenizer


RECOMPUTE = f"{MODEL}-recompute"  # the same directory served with kv_cache = false


def write_config(folder: Path, directory: Path) -> Path:
    path = folder / "causal-lm.toml"
    entry = f'kind = "causal_lm"\narchitecture = "transformers:{directory}"\nmax_length = 64\n'
    path.write_text(
        f'[[models]]\nname = "{MODEL}"\n{entry}\n'
        f'[[models]]\nname = "{RECOMPUTE}"\n{entry}\n[models.generation]\nkv_cache = false\n'
    )
    return path


def captum_call(method: str, params: dict, model, tokenizer, prompt: str, target: str):
    from captum import attr

    embedding = model.get_input_embeddings()
    if method == "occlusion":
        llm = attr.LLMAttribution(attr.FeatureAblation(model), tokenizer)
        kwargs: dict = {"use_cached_outputs": False}
    else:
        layer = {
            "gradient": lambda: attr.LayerGradientXActivation(model, embedding, multiply_by_inputs=False),
            "input_x_gradient": lambda: attr.LayerGradientXActivation(model, embedding),
            "integrated_gradients": lambda: attr.LayerIntegratedGradients(model, embedding),
        }[method]()
        llm = attr.LLMGradientAttribution(layer, tokenizer)
        kwargs = {"n_steps": params["steps"]} if "steps" in params else {}
    inp = attr.TextTokenInput(prompt, tokenizer, baselines=tokenizer.pad_token_id)
    return lambda: llm.attribute(inp, target=target, **kwargs)


def run(ctx: Context) -> Report:
    quick = ctx.plan.size < 224
    repeats = 2 if quick else 5
    report = Report()
    directory, model, tokenizer = build(ctx.folder, quick)
    served = ctx.servers.get(write_config(ctx.folder, directory), ctx.plan.device, request_timeout_s=900)
    prompt = " ".join(f"w{(7 * i) % WORDS}" for i in range(24))
    target = " ".join(f"w{(11 * i + 3) % WORDS}" for i in range(8))
    methods = {"gradient": {}, "integrated_gradients": {"steps": 2}} if quick else METHODS
    with httpx.Client(base_url=served.url, timeout=900) as client:
        for method, params in methods.items():
            body = json.dumps({"texts": [prompt], "target": target, "method": {"name": method, **params}}).encode()

            def call(body: bytes = body) -> None:
                response = client.post(
                    f"/v1/models/{MODEL}/explain", content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()

            theirs = captum_call(method, params, model, tokenizer, prompt, target)
            ours_s, captum_s = [], []
            for i in range(repeats + 1):  # the first of each is a warm-up
                o, c = timed(call, "cpu"), timed(theirs, "cpu")
                if i:
                    ours_s.append(o)
                    captum_s.append(c)
            settings = ", ".join(f"{k}={v}" for k, v in params.items())
            note = f"24-token prompt, 8-token answer{'; ' + settings if settings else ''}"
            report.rows.append(
                Row(
                    f"causal LM: {method} e2e / Captum",
                    median(ours_s) * 1000,
                    median(captum_s) * 1000,
                    "ms",
                    None,
                    note,
                )  # fmt: skip
            )
            print(f"  causal LM {method}: {median(ours_s) * 1000:.0f} ms, Captum {median(captum_s) * 1000:.0f} ms")
        generate = {"texts": [prompt], "generate": {"max_new_tokens": 16}}
        ids = tokenizer(prompt, return_tensors="pt")

        def ours_generate(model_name: str = MODEL) -> None:
            client.post(f"/v1/models/{model_name}/predict", json=generate).raise_for_status()

        def hf_generate() -> None:
            with torch.no_grad():
                model.generate(**ids, max_new_tokens=16, min_new_tokens=16, do_sample=False, pad_token_id=0)

        ours_g = [timed(ours_generate, "cpu") for _ in range(repeats + 1)][1:]
        recompute_g = [timed(lambda: ours_generate(RECOMPUTE), "cpu") for _ in range(repeats + 1)][1:]
        hf_g = [timed(hf_generate, "cpu") for _ in range(repeats + 1)][1:]
    for name, ours, note in (
        ("generate 16", ours_g, "greedy; both with a KV cache"),
        ("generate 16 kv_cache=false", recompute_g, "greedy; ours recomputes the sequence each step"),
    ):
        report.rows.append(
            Row(
                f"causal LM: {name} e2e / transformers generate",
                median(ours) * 1000,
                median(hf_g) * 1000,
                "ms",
                None,
                note,
            )  # fmt: skip
        )
        print(f"  causal LM {name}: {median(ours) * 1000:.0f} ms, transformers {median(hf_g) * 1000:.0f} ms")
    return report
