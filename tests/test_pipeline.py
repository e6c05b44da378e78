"""sgpa.pipeline.align end to end on real synthetic speech with the tiny random CTC model.

The tiny model is random, so these tests check the structure the pipeline guarantees (tiling,
context, token ownership, schema, flags), not boundary accuracy; accuracy lives in
benchmarks/alignment.py.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile

from sgpa.errors import InputError
from sgpa.pipeline import align, align_timed
from sgpa.segmentation import Segmentation, validate_segmentation_json


def test_flite_speech_is_tiled_into_words_and_mapped_to_lfm2_tokens(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    segmentation = align(path, text, tiny_acoustic_model)
    words = segmentation.words
    assert [word.text for word in words] == text.split()
    for left, right in zip(words, words[1:]):
        assert left.end == right.start  # one shared cut, no orphan pause
        assert left.token_end == right.token_start
    assert all(word.duration_s >= 0.05 - 1e-9 for word in words)
    duration = segmentation.audio.duration_s
    assert segmentation.grid.n_tokens == math.ceil(duration / 0.08)
    owner = np.array(segmentation.grid.owner)
    for word in words:
        assert np.all(owner[word.token_start : word.token_end] == word.index)
    for span in segmentation.context:
        assert np.all(owner[span.token_start : span.token_end] == -1)
    leading = [c for c in segmentation.context if c.kind == "leading"]
    assert (leading[0].end if leading else 0.0) == words[0].start
    assert 0.0 <= segmentation.quality.refinement_fallback_rate <= 1.0
    assert segmentation.quality.n_boundaries == len(words) - 1
    data = json.loads(segmentation.to_json())
    validate_segmentation_json(data)
    assert Segmentation.from_dict(data) == segmentation


def test_stereo_8khz_array_input_is_downmixed_and_resampled(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    mono, rate = soundfile.read(path, dtype="float32")
    from scipy.signal import resample_poly

    narrow = resample_poly(mono, 1, 2).astype(np.float32)
    stereo = np.stack([narrow, 0.5 * narrow], axis=1)
    segmentation = align(stereo, text, tiny_acoustic_model, sample_rate=8000, grid="whisper")
    assert segmentation.audio.sample_rate == 16000
    assert segmentation.audio.duration_s == pytest.approx(mono.size / rate, abs=0.01)
    assert segmentation.grid.token_duration_s == 0.02


def test_unspellable_and_numeral_words_keep_their_place(flite_speech, tiny_acoustic_model):
    path, _ = flite_speech
    segmentation = align(path, "the quick ☃ fox 57 dogs", tiny_acoustic_model)
    assert [w.text for w in segmentation.words] == ["the", "quick", "☃", "fox", "57", "dogs"]
    assert segmentation.words[2].flags == ["interpolated"]
    assert segmentation.words[4].normalized == "FIFTY SEVEN"
    assert segmentation.quality.n_interpolated_words == 1
    assert segmentation.quality.n_boundaries == 3  # the two cuts next to "☃" are not refinable


def test_max_players_merges_words_into_phrases(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    segmentation = align(path, text, tiny_acoustic_model, max_players=4)
    assert len(segmentation.words) == 4
    assert " ".join(w.text for w in segmentation.words) == text
    assert segmentation.parameters["max_players"] == 4


def test_transcript_far_longer_than_the_audio(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    with pytest.raises(InputError, match="too short for its transcript"):
        align(path, " ".join([text] * 20), tiny_acoustic_model)


def test_minutes_of_audio_align_with_timings_reported(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    mono, rate = soundfile.read(path, dtype="float32")
    repeats = int(np.ceil(125 * rate / mono.size))  # a bit over two minutes
    long_audio = np.tile(np.concatenate([mono, np.zeros(rate // 4, dtype=np.float32)]), repeats)
    segmentation, timings = align_timed(long_audio, " ".join([text] * repeats), tiny_acoustic_model)
    assert segmentation.audio.duration_s > 120
    assert len(segmentation.words) == 9 * repeats
    assert segmentation.words[-1].end <= segmentation.audio.duration_s
    assert set(timings) == {"load_audio_s", "forward_s", "stage1_s", "stage2_s", "stage3_s", "stage4_s"}


def test_cuts_between_words_start_from_the_delimiter_or_the_character_gap_midpoint(flite_speech, tiny_acoustic_model):
    path, text = flite_speech
    import dataclasses

    by_delimiter = align(path, text, tiny_acoustic_model, min_word_duration_s=0.0, interior_cut="delimiter")
    by_midpoint = align(path, text, tiny_acoustic_model, min_word_duration_s=0.0, interior_cut="midpoint")
    # auto: the tiny model was not trained with time windows, so it gets the midpoint; a model that was, the delimiter
    assert align(path, text, tiny_acoustic_model, min_word_duration_s=0.0) == by_midpoint
    timed = dataclasses.replace(tiny_acoustic_model, delimiter_marks_gaps=True)
    by_auto = align(path, text, timed, min_word_duration_s=0.0)
    assert [w.end for w in by_auto.words] == [w.end for w in by_delimiter.words]
    assert by_delimiter.parameters["interior_cut"] == "delimiter"
    assert by_midpoint.parameters["interior_cut"] == "midpoint"
    for left, right in zip(by_midpoint.words, by_midpoint.words[1:]):
        assert left.end == pytest.approx((left.ctc_end + right.ctc_start) / 2)
    for left, right in zip(by_delimiter.words, by_delimiter.words[1:]):
        assert left.ctc_end <= left.end <= right.ctc_start  # the delimiter lies between the two words' characters
    assert [w.end for w in by_delimiter.words[:-1]] != [w.end for w in by_midpoint.words[:-1]]
    with pytest.raises(InputError, match="interior_cut"):
        align(path, text, tiny_acoustic_model, interior_cut="centre")
