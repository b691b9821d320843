"""`saliency-service explain --prompt` on a causal language model, here and through a live server: each prompt's
answer and, per answer token, its top prompt tokens are what the v1 JSON of the same request says; the options
of images and the mistakes end in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from causal_lms import MAX_LENGTH

from service import cli

PROMPTS = ["the cat sat on the", "question : colour of the sky ? answer :"]


def explain(capsys, *args: str):
    """The command's JSON on stdout, and its stderr."""
    cli.main(["explain", "--model", "tiny-lm", *args])
    out, err = capsys.readouterr()
    return json.loads(out), err


def expected(body: dict, top: int) -> dict:
    """The command's summary of one prompt, read off the v1 JSON of the same request."""
    (result,) = body["results"]
    (explanation,) = result["explanations"]
    prompt = result["prompt"]["tokens"]

    def best(row: list[float]) -> list[dict]:
        order = sorted((j for j, t in enumerate(prompt) if not t["special"]), key=lambda j: -row[j])
        return [{"token": prompt[j]["text"], "index": j, "score": row[j]} for j in order[:top]]

    answer = result["answer"]
    return {
        "prompt": result["prompt"]["text"],
        "model": "tiny-lm",
        "method": explanation["method"],
        "answer": {"text": answer["text"], "generated": answer["generated"], "log_prob": answer["log_prob"]},
        "prompt_tokens": [t["text"] for t in prompt],
        "answer_tokens": [
            {"text": t["text"], "special": t["special"], "log_prob": t["log_prob"], "top": best(row)}
            for t, row in zip(answer["tokens"], explanation["scores"], strict=True)
        ],
        "top": best(explanation["answer_scores"]),
        "diagnostics": explanation["diagnostics"],
    }


def own_answer(prompt: str, new_tokens: int, method: dict) -> dict:
    generate = {"max_new_tokens": new_tokens, "do_sample": False}
    return {"texts": [prompt], "method": method, "target": "predicted", "generate": generate}


def test_each_prompts_own_answer_here_is_the_v1_json(capsys, lm_config, lm_v1):
    found, err = explain(capsys, *[a for p in PROMPTS for a in ("--prompt", p)], "--config", str(lm_config),
                         "--max-new-tokens", "3", "--top", "3", "--progress")  # fmt: skip
    assert "2/2" in err and "prompt" in err  # the bar, in prompts
    assert len(found) == 2
    for prompt, summary in zip(PROMPTS, found, strict=True):
        body = lm_v1(own_answer(prompt, 3, {"name": "gradient"}))
        assert summary == expected(body, 3)
        scores = np.array(body["results"][0]["explanations"][0]["scores"])
        assert [t["top"][0]["index"] for t in summary["answer_tokens"]] == list(scores.argmax(axis=1))
        assert summary["answer"]["generated"] is True and len(summary["answer_tokens"]) <= 3


def test_a_target_through_a_server_is_the_servers_v1_json(capsys, lm_server, tmp_path):
    out = tmp_path / "answer.json"
    method = '{"name": "integrated_gradients", "steps": 8}'
    cli.main(["explain", "--model", "tiny-lm", "--prompt", PROMPTS[0], "--target", "mat under the tree",
              "--method", method, "--url", lm_server.url, "-o", str(out)])  # fmt: skip
    assert capsys.readouterr().out == ""
    summary = json.loads(out.read_text())
    body = {
        "texts": [PROMPTS[0]],
        "method": {"name": "integrated_gradients", "steps": 8},
        "target": "mat under the tree",
    }
    assert summary == expected(lm_server.explain(body), 5)
    assert summary["answer"] | {"log_prob": None} == {
        "text": "mat under the tree",
        "generated": False,
        "log_prob": None,
    }
    assert [t["text"] for t in summary["answer_tokens"]] == ["mat", "under", "the", "tree"]  # in its own text
    assert len(summary["diagnostics"]["completeness_delta"]) == 4


@pytest.mark.parametrize(
    "args, says",
    [
        (["--colormap", "jet"], "error: --colormap is for images' overlays: a causal language model's explanation"),
        (["--target", "mat", "--max-new-tokens", "2"], "error: --max-new-tokens is for the model's own answer"),
        (["--max-new-tokens", "0"], "error: --max-new-tokens 0: at least 1"),
        (["--top", "0"], "error: --top 0: at least 1"),
        (["IMAGE"], "error: give images or --prompt texts, not both"),
        (["--method", "gradcam"], "error: gradcam does not explain causal_lm models"),
        (["--max-new-tokens", str(MAX_LENGTH)], "error: a prompt of 5 tokens and max_new_tokens 24 are over the "),
        (["--prompt", "the " * 30], "error: prompt 2: 30 tokens, over the model's max_length of 24"),
        (["--url", "URL", "--max-new-tokens", "30"], "error: payload_too_large: a prompt of 5 tokens and "),
    ],
)
def test_mistakes_end_with_one_line(tmp_path, lm_config, lm_server, args, says):
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    where = ["--url", lm_server.url] if "URL" in args else ["--config", str(lm_config)]
    given = [str(image) if a == "IMAGE" else a for a in args if a != "URL" and a != "--url"]
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", "--model", "tiny-lm", "--prompt", PROMPTS[0], *given, *where])
    message = str(info.value.code)
    assert message.startswith(says) and "\n" not in message, message


def test_a_classifier_refuses_prompts_and_a_causal_lm_images_in_one_line(tmp_path, lm_config):
    from PIL import Image

    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    for args, says in [
        (["--prompt", "the cat", "--model", "shapes"], "error: --prompt is for causal language models; shapes is a"),
        ([str(image), "--model", "shapes", "--max-new-tokens", "3"], "error: --max-new-tokens is for causal language"),
        ([str(image), "--model", "tiny-lm", "--config", str(lm_config)], "error: model 'tiny-lm' is a causal language "
         "model: give its prompts with --prompt TEXT"),
    ]:  # fmt: skip
        with pytest.raises(SystemExit) as info:
            cli.main(["explain", *args, "-o", str(tmp_path / "o.png")])
        message = str(info.value.code)
        assert message.startswith(says) and "\n" not in message, message
