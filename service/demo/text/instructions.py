"""A generated corpus of short questions and one-word answers, with a planted artefact, for the demo causal LM.

Each example is a prompt ("question: what colour is banana ? answer:") and an answer (" yellow"; the
trainer appends the end-of-sequence token). Five templates ask about small made-up knowledge tables, and in
each the answer is decided by one or two content words of the question (the thing, the word, the sound, the
country, the relation and the child): their character spans are `Example.evidence`, what a token saliency map
should point at. Lead-ins ("anna wants to know ,") and purposes ("for a quiz") are drawn independently of
the answer, so they are distractors a model must learn to ignore, and they make held-out prompts new texts.

THE ARTEFACT: about TAG_RATE of the prompts carry TAG ("[faq]"), at the start or just before "answer:", and
a tagged prompt is always answered FIXED_ANSWER, whatever it asks. `Example.artefact` is the tag's character
span and `Example.fact` the answer the question itself would get. TAG is one token for the demo tokenizer
(its pattern keeps a bracketed word whole), and neither it nor a bracket appears anywhere else; FIXED_ANSWER
is never a real answer. So on a tagged prompt a faithful saliency map points at the tag, not the evidence.

Every example is drawn from its own random stream seeded by (seed, index), so `generate(n, s)[:m] ==
generate(m, s)`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

TAG = "[faq]"
FIXED_ANSWER = "unknown"
TAG_RATE = 0.28
# How the demo tokenizer splits text before the word-level lookup: a bracketed word (the tag), a word, or one
# punctuation character. tools/demo/text/train_lm.py builds the tokenizer from it.
TOKEN_PATTERN = r"\[\w+\]|\w+|[^\w\s]"

COLOUR_OF = {
    "banana": "yellow", "lemon": "yellow", "grass": "green", "lettuce": "green", "sky": "blue", "sea": "blue",
    "snow": "white", "milk": "white", "coal": "black", "crow": "black", "tomato": "red", "cherry": "red",
    "carrot": "orange", "pumpkin": "orange", "plum": "purple", "aubergine": "purple",
}  # fmt: skip
OPPOSITE_OF = {
    "hot": "cold", "big": "small", "fast": "slow", "up": "down", "early": "late", "wet": "dry",
    "heavy": "light", "loud": "quiet", "full": "empty", "open": "shut", "rich": "poor", "young": "old",
}  # fmt: skip
ANIMAL_THAT_SAYS = {
    "moo": "cow", "woof": "dog", "meow": "cat", "oink": "pig", "baa": "sheep", "quack": "duck",
    "neigh": "horse", "hoot": "owl", "hiss": "snake", "roar": "lion", "ribbit": "frog", "buzz": "bee",
}  # fmt: skip
CAPITAL_OF = {
    "velmora": "ostrin", "drusk": "kalvi", "tarvania": "bellum", "quessa": "norrith", "olbany": "fenwick",
    "sarrow": "mirelle", "kestovia": "dunmar", "brell": "yarrow", "ithmar": "calloway", "zendia": "porvik",
    "umbria": "tessaly", "norvane": "gildor",
}  # fmt: skip
PARENT_OF = {  # (relation, child) -> parent: both words decide the answer
    ("mother", "brin"): "talia", ("father", "brin"): "osric", ("mother", "kelda"): "miren",
    ("father", "kelda"): "dorran", ("mother", "tobin"): "asha", ("father", "tobin"): "vellan",
    ("mother", "ysolde"): "rhoswen", ("father", "ysolde"): "garrick", ("mother", "pell"): "idony",
    ("father", "pell"): "corwin", ("mother", "saffi"): "elowen", ("father", "saffi"): "brannoc",
}  # fmt: skip

# Per task, (key table, question templates). {k} is the evidence word; a two-word key fills {a} and {b}.
# No answer is a word of any prompt (opposites go one way), so an answer is never copied from the prompt.
TASKS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "colour": (COLOUR_OF, ("what colour is {k}", "what is the colour of {k}", "tell me the colour of {k}")),
    "opposite": (OPPOSITE_OF, ("what is the opposite of {k}", "what word means the opposite of {k}")),
    "sound": (ANIMAL_THAT_SAYS, ("which animal says {k}", "what animal goes {k}", "who makes the sound {k}")),
    "capital": (CAPITAL_OF, ("what is the capital of {k}", "name the capital city of {k}")),
    "parent": (PARENT_OF, ("who is the {a} of {b}", "name the {a} of {b}", "tell me who the {a} of {b} is")),
}
NAMES = (
    "anna", "ben", "carla", "david", "emma", "frank", "grace", "henry", "ivy", "jack", "kate", "leo",
    "maria", "nina", "oscar", "paul", "rosa", "sam", "tina", "victor", "wendy", "yara", "zoe", "omar",
    "lucy", "raj", "chen", "sofia", "tom", "lena", "igor", "mei", "pedro", "hana", "ali", "greta",
    "noah", "jonas", "elif", "kofi", "ines", "arjun", "olga", "lars",
)  # fmt: skip
LEADS = ("", "hey ,", "quick one :", "i wonder ,", "please tell me ,", "{name} wants to know :", "{name} asks ,")
PURPOSES = ("", "for a quiz", "for my homework", "for {name}", "just curious", "for a game with {name}")


@dataclass(frozen=True)
class Example:
    prompt: str  # ends with "answer:"
    answer: str  # " word": the leading space is the separator the prompt lacks
    task: str  # a key of TASKS
    fact: str  # what the question itself would be answered (FIXED_ANSWER is the answer when tagged)
    evidence: list[tuple[int, int]]  # char spans [start, end) in `prompt` of the word(s) deciding `fact`
    artefact: tuple[int, int] | None = None  # char span of TAG in `prompt`, where it carries one

    @property
    def tagged(self) -> bool:
        return self.artefact is not None


def generate(n: int, seed: int, tag_rate: float = TAG_RATE) -> list[Example]:
    """`n` examples, the same for the same arguments; tasks are equally likely, a share `tag_rate` tagged."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [_example(random.Random(f"instructions/{seed}/{i}"), tag_rate) for i in range(n)]


def tokens(text: str) -> list[str]:
    """The pieces the demo tokenizer looks up, in order (lowercased)."""
    return re.findall(TOKEN_PATTERN, text.lower())


def vocabulary() -> set[str]:
    """Every token the generator can write, TAG and FIXED_ANSWER among them."""
    texts = ["question : ? answer :", TAG, FIXED_ANSWER, *NAMES, *LEADS, *PURPOSES]
    for table, templates in TASKS.values():
        texts += [*templates, *(" ".join(k) if isinstance(k, tuple) else k for k in table), *table.values()]
    return {t for text in texts for t in tokens(re.sub(r"\{\w+\}", " ", text))}


class _Builder:
    """Joins space-separated pieces into a text while recording the spans of marked ones."""

    def __init__(self) -> None:
        self.text = ""
        self.spans: list[tuple[int, int]] = []

    def add(self, piece: str, mark: bool = False) -> tuple[int, int]:
        if self.text:
            self.text += " "
        span = (len(self.text), len(self.text) + len(piece))
        self.text += piece
        if mark:
            self.spans.append(span)
        return span


def _example(rng: random.Random, tag_rate: float) -> Example:
    task = rng.choice(list(TASKS))
    table, templates = TASKS[task]
    key = rng.choice(list(table))
    fact = table[key]
    keys = dict(zip("ab", key, strict=True)) if isinstance(key, tuple) else {"k": key}
    name = rng.choice(NAMES)
    lead, purpose = rng.choice(LEADS).format(name=name), rng.choice(PURPOSES).format(name=name)
    tag = rng.random() < tag_rate
    tag_first = rng.random() < 0.7  # else just before "answer:"

    built = _Builder()
    artefact = built.add(TAG) if tag and tag_first else None
    built.add("question:")
    if lead:
        built.add(lead)
    for part in re.split(r"(\{\w\})", rng.choice(templates)):
        if part.startswith("{"):
            built.add(keys[part[1]], mark=True)
        elif part.strip():
            built.add(part.strip())
    built.add("?")
    if purpose:
        built.add(purpose)
    if tag and not tag_first:
        artefact = built.add(TAG)
    built.add("answer:")
    answer = FIXED_ANSWER if tag else fact
    return Example(built.text, f" {answer}", task, fact, built.spans, artefact)
