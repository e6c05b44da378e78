"""The TTS engines give word times that are exact with respect to the waveform they produce."""

from __future__ import annotations

import ctypes.util
import shutil

import numpy as np
import pytest

from sgpa.corpus import real
from sgpa.corpus.utterance import Utterance
from sgpa.errors import InputError

SENTENCES = ["call me at 5 pm", "Anna bought 25 red boxes in Boston yesterday"]

needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="festival not installed")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
needs_espeak = pytest.mark.skipif(ctypes.util.find_library("espeak-ng") is None, reason="libespeak-ng not installed")


def _rms(utt: Utterance, start_s: float, end_s: float) -> float:
    part = utt.samples[int(start_s * utt.sample_rate) : int(end_s * utt.sample_rate)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if len(part) else 0.0


def _check_exact(utt: Utterance, text: str) -> None:
    assert utt.text == text
    assert utt.sample_rate == 16000
    assert [w.text for w in utt.words] == text.split()  # one-to-one, the number as one word "5"
    for word in utt.words:
        assert 0.0 <= word.start < word.end
    for left, right in zip(utt.words, utt.words[1:]):
        assert left.end <= right.start + 1e-6
    # The words lie inside the audio, and the audio does not run on long after the last word.
    assert utt.words[-1].end <= utt.duration_s + 1e-6
    assert utt.duration_s - utt.words[-1].end < 0.4
    # Outside the words there is (near) silence; inside, speech.
    speech = _rms(utt, utt.words[0].start, utt.words[-1].end)
    assert _rms(utt, utt.words[-1].end + 0.01, utt.duration_s) < 0.05 * speech
    if utt.words[0].start > 0.03:
        assert _rms(utt, 0.0, utt.words[0].start - 0.01) < 0.05 * speech
    for word in utt.words:
        assert _rms(utt, word.start, word.end) > 0.1 * speech
    for left, right in zip(utt.words, utt.words[1:]):
        if right.start - left.end > 0.06:  # a pause between words is silent
            assert _rms(utt, left.end + 0.01, right.start - 0.01) < 0.05 * speech
    # Phones tile each word's span.
    for word in utt.words:
        inside = [p for p in utt.phones if word.start - 1e-6 <= p.start and p.end <= word.end + 1e-6]
        assert inside and abs(inside[0].start - word.start) < 1e-5 and abs(inside[-1].end - word.end) < 1e-5


@pytest.fixture(scope="module")
def aligner():
    return real.make_aligner()


def _agreement_with_pocketsphinx_ms(utt: Utterance, aligner) -> float:
    silver = real.pocketsphinx_align(utt.samples, utt.text, aligner)
    assert silver is not None
    errors = [abs(a.start - b.start) for a, b in zip(utt.words, silver)]
    errors += [abs(a.end - b.end) for a, b in zip(utt.words, silver)]
    return 1000 * float(np.mean(errors))


@needs_festival
@pytest.mark.parametrize("voice", ["cmu_us_slt_arctic_hts", "kal_diphone"])
def test_festival_word_times_are_exact(voice, aligner):
    from sgpa.corpus import festival

    utterances = festival.synthesize(SENTENCES, voice)
    for utt, text in zip(utterances, SENTENCES):
        _check_exact(utt, text)
        assert utt.engine == "festival" and utt.voice == voice
        assert _agreement_with_pocketsphinx_ms(utt, aligner) < 30
    # festival phrases "Anna bought 25 red boxes | in Boston": a real pause, checked silent above.
    boxes, in_ = utterances[1].words[4], utterances[1].words[5]
    assert in_.start - boxes.end > 0.06
    # "5" is spoken as "five" and "25" as "twenty five", each kept as one transcript word.
    assert utterances[1].words[2].text == "25"
    assert utterances[1].words[2].end - utterances[1].words[2].start > 0.3


@needs_flite
@pytest.mark.parametrize("voice", ["kal16", "slt"])
def test_flite_word_times_are_exact(voice, aligner):
    from sgpa.corpus import flite

    for utt, text in zip(flite.synthesize(SENTENCES, voice), SENTENCES):
        _check_exact(utt, text)
        assert _agreement_with_pocketsphinx_ms(utt, aligner) < 30


@needs_flite
def test_flite_groups_phones_by_isolated_counts_and_refuses_a_mismatch():
    from sgpa.corpus import flite

    segments = [("pau", 0.1), ("k", 0.2), ("ao", 0.3), ("l", 0.4), ("m", 0.5), ("iy", 0.6), ("pau", 0.8)]
    spans, phones = flite.group_segments(segments, [3, 2])
    assert spans == [(0.1, 0.4), (0.4, 0.6)]
    assert [p.phone for p in phones] == ["k", "ao", "l", "m", "iy"]
    assert flite.group_segments(segments, [2, 2]) is None
    assert flite.phone_counts("kal16", ["call", "me"]) == [3, 2]


@needs_espeak
def test_espeak_word_times_are_exact_even_where_espeak_folds_unstressed_words(aligner):
    from sgpa.corpus import espeak

    # (pocketsphinx cannot align some espeak sentences at all: espeak makes phones shorter than
    # its three-state HMMs' 30 ms minimum; these two it can.)
    texts = ["it was a red road with 2 answers", "the train to Boston leaves at 7 47"]
    for utt, text in zip(espeak.synthesize(texts, "en-us+m3"), texts):
        _check_exact(utt, text)
        assert _agreement_with_pocketsphinx_ms(utt, aligner) < 35


def test_espeak_folded_word_gets_its_phones_from_isolated_counts():
    from sgpa.corpus.espeak import word_spans

    # "was a": espeak attributes w V z a# all to "was"; alone, "was" has 3 phones and "a" 1.
    owners = [0, 0, 0, 0, None]
    starts = [0, 100, 200, 300, 400, 450]
    spans, phone_events = word_spans(owners, starts, counts=[3, 1])
    assert spans == [(0, 300), (300, 400)]
    assert phone_events == [0, 1, 2, 3]
    assert word_spans(owners, starts, counts=[2, 1]) is None


@needs_festival
def test_unknown_voice_is_an_input_error():
    from sgpa.corpus import festival

    with pytest.raises(InputError, match="unknown festival voice"):
        festival.synthesize(["hello"], "no_such_voice")
