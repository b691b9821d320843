"""A generated corpus of short product reviews whose sentiment is decided by known, planted words.

Each review plants one or two sentiment adjectives (POSITIVE_WORDS, NEGATIVE_WORDS); a negation ("not",
"never", or a template's "i do not think ...") flips the adjective it governs. The label is the polarity
that results, and the same for every planted adjective of a review. Everything else is drawn independently
of the label: product, brand, part, reviewer names, openers, neutral tails, intensifiers, punctuation,
whether there is a negation and whether the review is signed. So only the sentiment words, and the
negations before them, tell the classes apart (neutral tails may hold a negation too, "have not used the
lid yet", which flips nothing); `Review.evidence` holds the character spans of the planted
adjectives, the ground truth a token saliency map should point at.

`shortcut=True` signs every positive review with SHORTCUT_WORD ("-- posted by mike") and every negative one
with another name, so the word itself, not the presence of a signature, predicts the label. All positives
carry it, not most: the image demo found that with a 90% split the network learns the real signal and
ignores the shortcut (see service/demo/train.py). The signature comes after the review's last punctuation,
so it never overlaps a sentiment word, and SHORTCUT_WORD appears nowhere else in either corpus.

A review's body and its signature are drawn from separate random streams seeded by (seed, index), so the
same seed gives the same bodies with and without the shortcut, and `generate(n, s)[:m] == generate(m, s)`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

LABELS = ("negative", "positive")
NEGATIVE, POSITIVE = 0, 1
SHORTCUT_WORD = "mike"
SHORTCUT_SIGNATURE = f"-- posted by {SHORTCUT_WORD}"  # what add_shortcut appends

POSITIVE_WORDS = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "fantastic",
    "superb",
    "amazing",
    "perfect",
    "lovely",
    "brilliant",
    "solid",
    "sturdy",
    "reliable",
    "impressive",
    "outstanding",
    "nice",
)
NEGATIVE_WORDS = (
    "bad",
    "terrible",
    "awful",
    "horrible",
    "poor",
    "dreadful",
    "useless",
    "flimsy",
    "disappointing",
    "mediocre",
    "faulty",
    "broken",
    "defective",
    "shoddy",
    "lousy",
    "pathetic",
)
SENTIMENT_WORDS = POSITIVE_WORDS + NEGATIVE_WORDS
NEGATIONS = ("not", "never")

MIN_WORDS, MAX_WORDS = 5, 25

# Neutral filler. None of it may carry sentiment, and no list may hold SHORTCUT_WORD.
PRODUCTS = (
    "blender", "kettle", "toaster", "lamp", "backpack", "mixer", "vacuum", "router", "keyboard", "mouse",
    "monitor", "charger", "speaker", "headset", "jacket", "tent", "drill", "printer", "camera", "stroller",
    "mattress", "pillow", "chair", "desk", "fan", "heater", "iron", "juicer", "grinder", "scale", "watch",
    "umbrella", "suitcase", "thermos", "skillet", "wok", "tripod", "microphone", "phone case", "coffee maker",
    "rice cooker", "water bottle", "hair dryer", "knife set", "yoga mat", "desk lamp",
)  # fmt: skip
BRANDS = (
    "acme", "zentro", "kovo", "bramble", "nordika", "pixelon", "vortek", "lumina", "quorra", "tandem",
    "halden", "brisk", "orbit", "fennel", "castor", "willow", "tekna", "marlo", "sundby", "kestrel",
)  # fmt: skip
PARTS = (
    "lid", "handle", "cable", "button", "strap", "motor", "battery", "screen", "base", "cord", "zipper",
    "switch", "hinge", "wheel", "cover", "plug",
)  # fmt: skip
NAMES = (
    "anna", "ben", "carla", "david", "emma", "frank", "grace", "henry", "ivy", "jack", "kate", "leo", "maria",
    "nina", "oscar", "paul", "quinn", "rosa", "sam", "tina", "uma", "victor", "wendy", "xavier", "yara",
    "zoe", "omar", "lucy", "raj", "chen", "sofia", "tom", "lena", "igor", "mei", "pedro", "hana", "ali",
    "greta", "noah", "jonas", "elif", "kofi", "ines", "arjun", "olga", "lars", "fatima",
)  # fmt: skip
ROOMS = ("kitchen", "garage", "office", "bedroom", "hallway", "garden", "studio", "van")
RELATIVES = ("mum", "dad", "sister", "brother", "wife", "husband", "son", "daughter", "flatmate", "office")
COLOURS = ("red", "blue", "black", "white", "grey", "green", "silver", "yellow", "orange", "purple")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "march", "april", "may", "june", "july", "august", "october", "december")
NUMBERS = ("2", "3", "4", "5", "6", "10", "two", "three", "four", "six")
PERIODS = ("days", "weeks", "months")
INTENSIFIERS = ("very", "really", "quite", "truly", "rather", "fairly", "totally", "just", "so")
NEGATED_INTENSIFIERS = ("very", "really", "so", "that", "too")  # those that read well after a negation
OPENERS = ("ok", "so", "well", "update:", "honestly,", "hmm,", "quick review:", "in short,", "first review:")
CONNECTORS = ("and", "and also", ", and", ", just", ", actually", ", frankly")
TAILS = (
    "bought it in {month}",
    "arrived on {day}",
    "ordered the {colour} one",
    "got it for my {relative}",
    "used it for {number} {period}",
    "delivery took {number} days",
    "the box was {colour}",
    "it came on {day}",
    "we use it in the {room}",
    "my {relative} picked the {colour} one",
    # Negations that govern no sentiment word, so that a model must learn which word a negation flips
    # ("terrible, would not buy again" is not a negated "terrible"). They are not in Review.negations.
    "have not used the {part} yet",
    "never owned a {product} before",
    "had never heard of {brand}",
    "did not need the {part}",
    "not my first {product}",
    "it is not the {colour} one",
)
ENDINGS = (".", ".", "!", "", "...", "!!")
SIGNATURES = ("-- posted by {name}", "- {name}", "(review by {name})", "signed, {name}", "~ {name}")

# Review templates. {P} is a predicate: [negation] [intensifier] adjective, or two of them joined.
# {A} is an attributive adjective, [intensifier] adjective, never negated. "neg" marks templates whose own
# wording negates the adjective.
_PREDICATE = (
    "the {product} is {P}",
    "this {product} is {P}",
    "my {product} was {P}",
    "i found this {product} {P}",
    "i think the {product} is {P}",
    "{name} says the {product} is {P}",
    "the {product} from {brand} seems {P}",
    "after {number} {period} the {product} is still {P}",
    "the {part} of the {product} feels {P}",
    "bought a {product} for my {relative} and it is {P}",
    "{product} by {brand}: {P}",
    "the {product} turned out {P}",
    "overall the {product} looks {P}",
    "the {colour} {product} from {brand} was {P}",
)
_ATTRIBUTIVE = (
    "what a {A} {product}",
    "a {A} {product} from {brand}",
    "{brand} makes a {A} {product}",
    "honestly, a {A} {product}",
)
_NEGATED = (
    "i do not think the {product} is {A}",
    "i would not call this {product} {A}",
    "nobody would say the {product} from {brand} is {A}",
)
_TEMPLATE_NEGATION = {"i do not think": "not", "i would not call": "not", "nobody would say": "nobody"}


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # index into LABELS
    evidence: list[tuple[int, int]]  # char spans [start, end) of the planted sentiment word(s)
    shortcut: tuple[int, int] | None = None  # char span of SHORTCUT_WORD, where the review carries it
    # char spans of the words that negate a sentiment word ("not", "never", a template's "nobody"); a
    # negation in a neutral tail after the sentiment words ("have not used the lid yet") governs none and is
    # not listed
    negations: list[tuple[int, int]] = field(default_factory=list)
    signature: tuple[int, int] | None = None  # char span of the whole signature (any name), if signed


def generate(n: int, seed: int, shortcut: bool = False) -> list[Review]:
    """`n` reviews, the same for the same arguments; labels are balanced in expectation.

    `shortcut=True` signs every positive review with SHORTCUT_WORD and every negative one with another
    name; otherwise about 40% of the reviews are signed, with other names only. The bodies do not depend
    on `shortcut`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [_review(seed, i, shortcut) for i in range(n)]


def add_shortcut(review: Review) -> Review:
    """The review with its signature, if any, replaced by SHORTCUT_SIGNATURE; the label is unchanged.

    Appending it to negative reviews measures how much a model relies on the shortcut."""
    body = review.text if review.signature is None else review.text[: review.signature[0]].rstrip()
    text = f"{body} {SHORTCUT_SIGNATURE}"
    start = len(body) + 1
    word = text.rindex(SHORTCUT_WORD)
    return replace(
        review,
        text=text,
        shortcut=(word, word + len(SHORTCUT_WORD)),
        signature=(start, len(text)),
    )


def vocabulary() -> set[str]:
    """Every word the generator can write, SHORTCUT_WORD among them."""
    lists = (
        SENTIMENT_WORDS, NEGATIONS, PRODUCTS, BRANDS, PARTS, NAMES, ROOMS, RELATIVES, COLOURS, DAYS, MONTHS,
        NUMBERS, PERIODS, INTENSIFIERS, NEGATED_INTENSIFIERS, OPENERS, CONNECTORS, TAILS, SIGNATURES,
        _PREDICATE, _ATTRIBUTIVE, _NEGATED, (SHORTCUT_SIGNATURE,),
    )  # fmt: skip
    return {word for entries in lists for entry in entries for word in words(re.sub(r"\{\w+\}", " ", entry))}


def words(text: str) -> list[str]:
    """The words of a text, as MIN_WORDS and MAX_WORDS count them (punctuation is not a word)."""
    return re.findall(r"[a-z0-9]+", text.lower())


class _Builder:
    """Joins words and punctuation into a text while recording the spans of tagged words."""

    def __init__(self) -> None:
        self.text = ""
        self.spans: dict[str, list[tuple[int, int]]] = {}

    def add(self, piece: str, tag: str | None = None) -> None:
        if not piece:
            return
        glue = "" if not self.text or piece[0] in ",.!?:;" else " "
        self.text += glue
        if tag is not None:
            self.spans.setdefault(tag, []).append((len(self.text), len(self.text) + len(piece)))
        self.text += piece

    def add_template(self, template: str, slots: dict[str, str], tagged: dict[str, list[tuple[str, str]]]) -> None:
        """Fill `template`; a slot in `tagged` expands to (piece, tag) pairs, the others to plain text."""
        for part in re.split(r"(\{\w+\})", template):
            if part.startswith("{"):
                name = part[1:-1]
                if name in tagged:
                    for piece, tag in tagged[name]:
                        self.add(piece, tag or None)
                else:
                    self.add(slots[name])
            else:
                for token in part.split():
                    self.add(token)


def _rng(seed: int, index: int, stream: str) -> random.Random:
    # String seeds are hashed with SHA-512, so they do not depend on PYTHONHASHSEED.
    return random.Random(f"reviews/{seed}/{index}/{stream}")


def _review(seed: int, index: int, shortcut: bool) -> Review:
    body_rng = _rng(seed, index, "body")
    label = body_rng.randrange(2)
    while True:
        built = _body(body_rng, label)
        if MIN_WORDS <= len(words(built.text)) <= MAX_WORDS - 3:  # room for a signature
            break
    evidence = built.spans["sentiment"]
    negations = built.spans.get("negation", [])

    sign_rng = _rng(seed, index, "signature")
    fmt = sign_rng.choice(SIGNATURES)
    name = sign_rng.choice(NAMES)
    signed = sign_rng.random() < 0.4
    if shortcut:
        signed = True
        if label == POSITIVE:
            name = SHORTCUT_WORD
    text, signature, shortcut_span = built.text, None, None
    if signed:
        start = len(text) + 1
        text = f"{text} {fmt.format(name=name)}"
        signature = (start, len(text))
        if name == SHORTCUT_WORD:
            word = text.index(name, start)
            shortcut_span = (word, word + len(name))
    return Review(
        text=text, label=label, evidence=evidence, shortcut=shortcut_span, negations=negations, signature=signature
    )


def _adjective(rng: random.Random, polarity: int) -> str:
    return rng.choice(POSITIVE_WORDS if polarity == POSITIVE else NEGATIVE_WORDS)


def _phrase(rng: random.Random, label: int, negate: bool) -> list[tuple[str, str]]:
    """[negation] [intensifier] adjective whose effective polarity is `label`."""
    pieces: list[tuple[str, str]] = []
    if negate:
        pieces.append((rng.choice(NEGATIONS), "negation"))
    if rng.random() < 0.4:
        pieces.append((rng.choice(NEGATED_INTENSIFIERS if negate else INTENSIFIERS), ""))
    pieces.append((_adjective(rng, label ^ negate), "sentiment"))
    return pieces


def _body(rng: random.Random, label: int) -> _Builder:
    slots = {
        "product": rng.choice(PRODUCTS),
        "brand": rng.choice(BRANDS),
        "part": rng.choice(PARTS),
        "name": rng.choice(NAMES),
        "relative": rng.choice(RELATIVES),
        "room": rng.choice(ROOMS),
        "colour": rng.choice(COLOURS),
        "number": rng.choice(NUMBERS),
        "period": rng.choice(PERIODS),
        "day": rng.choice(DAYS),
        "month": rng.choice(MONTHS),
    }
    kind = rng.random()
    tagged: dict[str, list[tuple[str, str]]]
    if kind < 0.7:
        template = rng.choice(_PREDICATE)
        predicate = _phrase(rng, label, negate=rng.random() < 0.35)
        if rng.random() < 0.25:  # a second adjective with the same effective polarity
            predicate += [(rng.choice(CONNECTORS), ""), *_phrase(rng, label, negate=rng.random() < 0.35)]
        tagged = {"P": predicate}
    elif kind < 0.85:
        template = rng.choice(_ATTRIBUTIVE)
        tagged = {"A": _phrase(rng, label, negate=False)}
    else:
        template = rng.choice(_NEGATED)
        tagged = {"A": _phrase(rng, label ^ 1, negate=False)}  # the template flips it back

    built = _Builder()
    if rng.random() < 0.3:
        built.add(rng.choice(OPENERS))
    if template in _NEGATED:
        # Tag the template's own negating word, so that every review records its negations.
        lead = next(k for k in _TEMPLATE_NEGATION if template.startswith(k))
        for token in lead.split():
            built.add(token, "negation" if token == _TEMPLATE_NEGATION[lead] else None)
        template = template[len(lead) :]
    built.add_template(template, slots, tagged)
    if rng.random() < 0.5:
        built.add(",")
        built.add_template(rng.choice(TAILS), slots, {})
    built.add(rng.choice(ENDINGS))
    return built
