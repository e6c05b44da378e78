"""sgpa.word_spans and sgpa.merge: raw word spans, interpolation, tiling, minimum duration and phrase merging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sgpa.ctc import CharacterAlignment
from sgpa.errors import InputError
from sgpa.merge import build_word_segments, context_spans, enforce_min_duration, merge_into_phrases
from sgpa.text import NormalizedWord
from sgpa.word_spans import INTERPOLATED_WORD_S, RawWordSpan, delimiter_times_s, interpolate_missing, raw_word_spans


def span(start: float, end: float) -> RawWordSpan:
    return RawWordSpan(start, end, confidence=0.5)


def test_raw_word_span_runs_from_first_to_last_character_and_skips_delimiters():
    alignment = CharacterAlignment(
        label_ids=np.array([5, 6, 4, 7, 8]),
        word_index=np.array([0, 0, -1, 1, 1]),
        start_frame=np.array([10, 14, 20, 30, 33]),
        end_frame=np.array([11, 16, 21, 31, 40]),
        confidence=np.array([0.8, 0.6, 0.1, 1.0, 0.5]),
        frame_duration_s=0.02,
        n_frames=50,
    )
    first, second = raw_word_spans(alignment, 2, duration_s=1.0)
    assert (first.start_s, first.end_s, first.confidence) == pytest.approx((0.20, 0.32, 0.7))
    assert (second.start_s, second.end_s, second.confidence) == pytest.approx((0.60, 0.80, 0.75))


def test_delimiter_time_is_the_centre_of_the_delimiter_frames_between_two_spelled_words():
    alignment = CharacterAlignment(
        label_ids=np.array([5, 6, 4, 7, 4, 8]),
        word_index=np.array([0, 0, -1, 1, -1, 3]),  # word 2 could not be spelled
        start_frame=np.array([10, 14, 20, 30, 34, 40]),
        end_frame=np.array([11, 16, 23, 31, 35, 42]),
        confidence=np.ones(6),
        frame_duration_s=0.02,
        n_frames=50,
    )
    assert delimiter_times_s(alignment, 4) == [pytest.approx(0.43), None, None]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=8), st.data())
def test_word_spans_and_delimiter_times_match_a_scan_over_every_word(words, data):
    # words: (labels of the word, delimiters after it); a word with no labels could not be spelled
    word_index = [w for index, (n_labels, n_delimiters) in enumerate(words)
                  for w in [index] * n_labels + [-1] * n_delimiters]
    assume(any(w >= 0 for w in word_index))
    m = len(word_index)
    start = np.cumsum(data.draw(st.lists(st.integers(0, 5), min_size=m, max_size=m)))
    end = start + np.array(data.draw(st.lists(st.integers(1, 4), min_size=m, max_size=m)))
    alignment = CharacterAlignment(label_ids=np.zeros(m, dtype=int), word_index=np.array(word_index),
                                   start_frame=start, end_frame=end, confidence=np.linspace(0.1, 0.9, m),
                                   frame_duration_s=0.02, n_frames=int(end.max()) + 1)
    n_words = len(words)
    positions = np.arange(m)
    expected_times = []
    for index in range(n_words - 1):  # the delimiter strictly between word index and index + 1, if exactly one
        left, right = positions[alignment.word_index == index], positions[alignment.word_index == index + 1]
        between = [p for p in range(m) if left.size and right.size and left.max() < p < right.min()
                   and word_index[p] < 0]
        expected_times.append(None if len(between) != 1 else
                              float((start[between[0]] + end[between[0]]) / 2 * 0.02))
    assert delimiter_times_s(alignment, n_words) == expected_times
    spelled = [index for index in range(n_words) if index in word_index]
    spans = raw_word_spans(alignment, n_words, duration_s=float(end.max()) * 0.02 + 1.0)
    for index in spelled:  # the spelled words keep their labels' extent and mean confidence
        mine = alignment.word_index == index
        got = spans[index]
        assert (got.start_s, got.end_s) == pytest.approx((start[mine].min() * 0.02, end[mine].max() * 0.02))
        assert got.confidence == pytest.approx(alignment.confidence[mine].mean())


def test_missing_word_between_neighbours_takes_the_gap():
    spans = interpolate_missing([span(0.1, 0.3), None, span(0.7, 0.9)], duration_s=1.0)
    assert (spans[1].start_s, spans[1].end_s) == (0.3, 0.7)
    assert spans[1].interpolated and spans[1].confidence == 0.0


def test_run_of_missing_words_shares_a_narrow_gap_widened_around_its_middle():
    spans = interpolate_missing([span(0.1, 0.5), None, None, span(0.52, 0.9)], duration_s=1.0)
    needed = 2 * INTERPOLATED_WORD_S
    assert spans[1].start_s == pytest.approx(0.51 - needed / 2)
    assert spans[2].end_s == pytest.approx(0.51 + needed / 2)
    assert spans[1].end_s == pytest.approx(spans[2].start_s)


def test_missing_words_at_the_edges_stay_inside_the_audio():
    spans = interpolate_missing([None, span(0.1, 0.3), None], duration_s=0.4)
    assert (spans[0].start_s, spans[0].end_s) == (0.0, 0.1)
    assert (spans[2].start_s, spans[2].end_s) == (0.3, 0.4)


def test_min_duration_moves_cuts_minimally_and_stays_in_the_audio():
    cuts = enforce_min_duration(np.array([0.0, 0.01, 0.02, 0.5]), 0.05, duration_s=0.5)
    np.testing.assert_allclose(cuts, [0.0, 0.05, 0.10, 0.5])
    cuts = enforce_min_duration(np.array([0.4, 0.45, 0.47, 0.48]), 0.05, duration_s=0.5)
    np.testing.assert_allclose(cuts, [0.35, 0.40, 0.45, 0.50])


def test_min_duration_impossible_is_an_input_error():
    with pytest.raises(InputError, match="too short"):
        enforce_min_duration(np.array([0.0, 0.05, 0.1]), 0.06, duration_s=0.1)


def test_words_tile_the_speech_region_with_explicit_context():
    words = [NormalizedWord("hi", "hi", "HI", 0), NormalizedWord("☃", "☃", "", 1), NormalizedWord("yo", "yo", "YO", 0)]
    raw = [span(0.2, 0.4), RawWordSpan(0.45, 0.5, 0.0, interpolated=True), span(0.55, 0.8)]
    cuts = np.array([0.18, 0.43, 0.52, 0.83])
    segments = build_word_segments(words, raw, cuts, np.array([True, False, False, True]))
    assert [(s.start, s.end) for s in segments] == [(0.18, 0.43), (0.43, 0.52), (0.52, 0.83)]
    assert segments[1].flags == ["interpolated"]
    assert segments[0].start_refined and not segments[0].end_refined
    context = context_spans(segments, duration_s=1.0)
    assert [(c.kind, c.start, c.end) for c in context] == [("leading", 0.0, 0.18), ("trailing", 0.83, 1.0)]


def test_merging_into_phrases_caps_players_and_keeps_the_tiling():
    words = [NormalizedWord(t, t.lower(), t, 0) for t in ["A", "B", "C", "D", "E"]]
    cuts = np.array([0.0, 0.1, 0.2, 0.6, 0.7, 1.0])
    raw = [span(cuts[i], cuts[i + 1]) for i in range(5)]
    segments = build_word_segments(words, raw, cuts, np.ones(6, dtype=bool))
    phrases = merge_into_phrases(segments, 3)
    assert [p.text for p in phrases] == ["A B", "C", "D E"]
    assert [p.index for p in phrases] == [0, 1, 2]
    assert phrases[0].flags == ["merged"] and phrases[1].flags == []
    assert [(p.start, p.end) for p in phrases] == [(0.0, 0.2), (0.2, 0.6), (0.6, 1.0)]
    with pytest.raises(InputError):
        merge_into_phrases(segments, 0)
