"""Transcript normalisation: from what a person typed to the characters a CTC model can spell.

Each whitespace-separated transcript word stays one word (one player of the Shapley game), whatever
it expands to: "57" is the single word whose spoken form is "fifty seven"; "☃" is a word whose
spelling is empty (it will be interpolated, never dropped). Only tokens made purely of punctuation
("—", "...") are not words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sgpa.errors import InputError

#: Symbols read aloud as words.
SYMBOL_WORDS = {
    "%": "percent",
    "&": "and",
    "+": "plus",
    "=": "equals",
    "@": "at",
    "#": "number",
    "°": "degrees",
    "×": "times",
    "$": "dollars",
    "€": "euros",
    "£": "pounds",
}
_CURRENCIES = {"$", "€", "£"}
#: Letters that Unicode decomposition does not reduce to ASCII.
_LIGATURES = {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d"}
_APOSTROPHES = {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"}
_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th)?", re.IGNORECASE)


@dataclass
class NormalizedWord:
    """One transcript word on its way to the acoustic model.

    ``text`` is the word as written; ``spoken`` its expansion into lower-case spoken words
    ("57%" → "fifty seven percent"); ``normalized`` the spoken words spelled with the model's
    characters, sub-words separated by spaces ("FIFTY SEVEN PERCENT"), empty when nothing can be
    spelled; ``n_unspellable`` counts the characters dropped because the model lacks them.
    """

    text: str
    spoken: str
    normalized: str
    n_unspellable: int

    @property
    def spellable(self) -> bool:
        return bool(self.normalized)

    @property
    def partially_spelled(self) -> bool:
        return self.spellable and self.n_unspellable > 0


def number_to_words(digits: str, ordinal_suffix: str | None = None) -> str:
    """Spell a numeral such as ``"57"``, ``"1,000"``, ``"3.14"`` or ``"21"`` + ``"st"`` in English words.

    A bare four-digit number between 1100 and 2099 is read as a year ("1999" → "nineteen
    ninety nine"), which is how such numbers are usually spoken.
    """
    from decimal import Decimal

    from num2words import num2words

    plain = digits.replace(",", "")
    if ordinal_suffix:
        words = num2words(int(float(plain)), lang="en", to="ordinal")
    elif "." in plain:
        words = num2words(Decimal(plain), lang="en")
    elif "," not in digits and len(plain) == 4 and 1100 <= int(plain) <= 2099:
        words = num2words(int(plain), lang="en", to="year")
    else:
        words = num2words(int(plain), lang="en")
    return " ".join(words.replace("-", " ").replace(",", " ").split())


def strip_accents(text: str) -> str:
    """Remove diacritics ("café" → "cafe") and expand ligatures ("æ" → "ae")."""
    text = "".join(_LIGATURES.get(char, char) for char in text)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def is_punctuation_only(token: str) -> bool:
    """True when every character of ``token`` is Unicode punctuation (category P*) that is not read aloud.

    "&", "%", "#" and "@" are punctuation to Unicode but spoken words here ("and", "percent", ...).
    """
    return all(unicodedata.category(char).startswith("P") and char not in SYMBOL_WORDS for char in token)


def expand_word(word: str) -> str:
    """The spoken form of one transcript word: numerals and symbols spelled out, punctuation removed.

    Keeps the original letters (and any character it cannot interpret, such as "☃") so that the
    spelling step can decide what the model can spell.
    """
    word = unicodedata.normalize("NFKC", word)
    word = "".join(_APOSTROPHES.get(char, char) for char in word)
    currency = next((char for char in word if char in _CURRENCIES), None)
    pieces: list[str] = []
    position = 0
    for match in _NUMBER.finditer(word):
        pieces.append(word[position : match.start()])
        try:
            pieces.append(f" {number_to_words(match.group(1), match.group(2))} ")
        except (OverflowError, ArithmeticError, ValueError):
            pieces.append(f" {match.group(0)} ")  # too large to read aloud: left unspellable, not dropped
        position = match.end()
    pieces.append(word[position:])
    spoken = "".join(pieces)
    if currency is not None and _NUMBER.search(word):
        # "$5" is spoken "five dollars": the currency word follows the number.
        spoken = spoken.replace(currency, " ") + f" {SYMBOL_WORDS[currency]}"
    spoken = "".join(f" {SYMBOL_WORDS[char]} " if char in SYMBOL_WORDS else char for char in spoken)
    kept = []
    for char in spoken:
        category = unicodedata.category(char)
        if char == "'":
            kept.append(char)
        elif category in ("Pd", "Pc") or char in "/\\":
            kept.append(" ")  # "well-known" and "and/or" are two spoken words
        elif category.startswith("P"):
            continue
        else:
            kept.append(char)
    sub_words = [piece.strip("'") for piece in "".join(kept).split()]
    return " ".join(piece for piece in sub_words if piece)


def vocabulary_case(characters: set[str]) -> str:
    """``"upper"``, ``"lower"`` or ``"mixed"``: the letter case a character vocabulary spells with."""
    letters = [char for char in characters if char.isalpha()]
    has_upper = any(char.isupper() for char in letters)
    has_lower = any(char.islower() for char in letters)
    if has_upper and not has_lower:
        return "upper"
    if has_lower and not has_upper:
        return "lower"
    return "mixed"


def spell(spoken: str, characters: set[str]) -> tuple[str, int]:
    """Spell ``spoken`` with the vocabulary ``characters``.

    Returns the spelling (sub-words separated by single spaces, characters the vocabulary lacks
    dropped) and the number of dropped characters.
    """
    case = vocabulary_case(characters)
    if case == "upper":
        spoken = spoken.upper()
    elif case == "lower":
        spoken = spoken.lower()
    spelled_words = []
    n_dropped = 0
    for sub_word in spoken.split():
        # Keep accents a vocabulary can spell; otherwise "café" is spelled "cafe".
        candidate = sub_word if all(char in characters for char in sub_word) else strip_accents(sub_word)
        kept = "".join(char for char in candidate if char in characters)
        n_dropped += len(candidate) - len(kept)
        if kept:
            spelled_words.append(kept)
    return " ".join(spelled_words), n_dropped


def normalize_transcript(transcript: str, characters: set[str]) -> list[NormalizedWord]:
    """Split a transcript into words and spell each with the acoustic model's ``characters``.

    Parameters
    ----------
    transcript
        Free text as a person wrote it.
    characters
        The single characters the CTC model can emit (its letters and apostrophe; no special
        tokens, no word delimiter).

    Raises
    ------
    InputError
        The transcript has no words, or none of its words can be spelled with ``characters``.
    """
    tokens = [token for token in transcript.split() if not is_punctuation_only(token)]
    if not tokens:
        raise InputError("the transcript is empty (no words to align)")
    words = []
    for token in tokens:
        spoken = expand_word(token)
        normalized, n_dropped = spell(spoken, characters)
        words.append(NormalizedWord(text=token, spoken=spoken, normalized=normalized, n_unspellable=n_dropped))
    if not any(word.spellable for word in words):
        raise InputError(
            f"no word of the transcript {transcript.strip()[:60]!r} can be spelled with the acoustic model's "
            "characters"
        )
    return words
