"""sgpa.text: spelling a free-text transcript with a CTC model's characters, never losing a word."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpa.errors import InputError
from sgpa.text import expand_word, is_punctuation_only, normalize_transcript, number_to_words, spell

UPPER = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ'")
LOWER = set("abcdefghijklmnopqrstuvwxyz'")


def spelled(transcript: str, characters: set[str] = UPPER) -> list[str]:
    return [word.normalized for word in normalize_transcript(transcript, characters)]


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("57", "fifty seven"),
        ("1,000", "one thousand"),
        ("3.14", "three point one four"),
        ("21st", "twenty first"),
        ("1999", "nineteen ninety nine"),
        ("12345", "twelve thousand three hundred and forty five"),
    ],
)
def test_numerals_are_spelled_out(written, spoken):
    assert expand_word(written) == spoken


def test_symbols_and_currency_are_read_aloud():
    assert spelled("57% $5 R&D") == ["FIFTY SEVEN PERCENT", "FIVE DOLLARS", "R AND D"]
    assert spelled("salt & pepper , 50 %") == ["SALT", "AND", "PEPPER", "FIFTY", "PERCENT"]


def test_case_accents_and_apostrophes_follow_the_vocabulary():
    assert spelled("Café naïve Straße don’t") == ["CAFE", "NAIVE", "STRASSE", "DON'T"]
    assert spelled("Hello WORLD", LOWER) == ["hello", "world"]
    accented = UPPER | {"É"}
    assert spelled("café", accented) == ["CAFÉ"]


def test_punctuation_is_removed_and_hyphens_split_sub_words():
    assert spelled('"Well-known," she said... — (yes)!') == ["WELL KNOWN", "SHE", "SAID", "YES"]


def test_unspellable_word_keeps_its_place_with_an_empty_spelling():
    words = normalize_transcript("hello ☃ world", UPPER)
    assert [word.text for word in words] == ["hello", "☃", "world"]
    assert words[1].normalized == "" and not words[1].spellable and words[1].n_unspellable == 1


def test_partially_spelled_word_keeps_what_it_can_spell():
    (word,) = normalize_transcript("ab☃cd", UPPER)
    assert word.normalized == "ABCD"
    assert word.partially_spelled


def test_numerals_are_not_dropped_for_a_letters_only_vocabulary():
    words = normalize_transcript("room 101", UPPER)
    assert [word.normalized for word in words] == ["ROOM", "ONE HUNDRED AND ONE"]


@pytest.mark.parametrize("transcript", ["", "   ", "... — !", "\n\t"])
def test_empty_transcript(transcript):
    with pytest.raises(InputError, match="empty"):
        normalize_transcript(transcript, UPPER)


def test_transcript_of_only_unspellable_symbols():
    with pytest.raises(InputError, match="can be spelled"):
        normalize_transcript("☃ ♫ 你好", UPPER)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=8).filter(lambda s: s.split() == [s]), min_size=1, max_size=8))
def test_every_non_punctuation_token_survives_as_one_word(tokens):
    expected = [token for token in tokens if not is_punctuation_only(token)]
    try:
        words = normalize_transcript(" ".join(tokens), UPPER)
    except InputError:
        # Only allowed when no token has a single spellable character.
        assert not any(spell(expand_word(token), UPPER)[0] for token in expected)
        return
    assert [word.text for word in words] == expected


def test_a_numeral_too_large_to_read_aloud_stays_a_word():
    words = normalize_transcript("code " + "1" * 400, UPPER)
    assert [word.normalized for word in words] == ["CODE", ""]


def test_number_to_words_handles_plain_integers_without_year_reading_when_commas():
    assert number_to_words("2,000") == "two thousand"
    assert number_to_words("2000") == "two thousand"
