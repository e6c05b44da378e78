"""sgpa.tokens: token ownership by majority overlap on grids worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgpa.errors import InputError
from sgpa.segmentation import ContextSpan, WordSegment
from sgpa import tokens
from sgpa.tokens import GRID_PRESETS, GridSpec, assign_tokens, map_to_tokens, resolve_grid, token_count

LFM2 = GridSpec("lfm2-audio", 0.08)


def segments_from_cuts(cuts: list[float]) -> list[WordSegment]:
    return [
        WordSegment(index=i, text=f"w{i}", normalized=f"W{i}", start=cuts[i], end=cuts[i + 1], ctc_start=cuts[i],
                    ctc_end=cuts[i + 1], start_refined=True, end_refined=True, confidence=1.0)
        for i in range(len(cuts) - 1)
    ]


def test_presets():
    assert GRID_PRESETS == {"lfm2-audio": 0.08, "whisper": 0.02, "wav2vec2": 0.02, "qwen2-audio": 0.04, "voxtral": 0.08}
    assert resolve_grid("whisper").token_duration_s == 0.02
    assert resolve_grid(0.04, offset_s=0.01) == GridSpec("custom-40ms", 0.04, 0.01)
    with pytest.raises(InputError, match="unknown token grid"):
        resolve_grid("hubert")
    with pytest.raises(InputError, match="positive"):
        resolve_grid(0.0)


def test_token_count_covers_the_audio():
    assert token_count(0.64, LFM2) == 8
    assert token_count(0.65, LFM2) == 9
    assert token_count(1.0, GridSpec("x", 0.02, 0.01)) == 50


def test_hand_worked_lfm2_grid():
    # Words [0.10, 0.30) and [0.30, 0.50); audio 0.64 s; 80 ms tokens.
    # token: 0 [0,.08) 1 [.08,.16) 2 [.16,.24) 3 [.24,.32) 4 [.32,.40) 5 [.40,.48) 6 [.48,.56) 7 [.56,.64)
    segments = segments_from_cuts([0.10, 0.30, 0.50])
    context = [ContextSpan("leading", 0.0, 0.10), ContextSpan("trailing", 0.50, 0.64)]
    grid = map_to_tokens(segments, context, 0.64, LFM2)
    assert grid.owner == [-1, 0, 0, 0, 1, 1, -1, -1]
    assert grid.straddling_tokens == 3  # tokens 1, 3 and 6 each overlap two owners
    assert [(s.token_start, s.token_end) for s in segments] == [(1, 4), (4, 6)]
    assert [(c.token_start, c.token_end) for c in context] == [(0, 1), (6, 8)]


def test_grid_offset_shifts_the_tokens():
    owner, straddling = assign_tokens(np.array([0.0, 0.05, 0.10]), 0.10, GridSpec("x", 0.02, 0.01))
    # tokens [.01,.03) [.03,.05) [.05,.07) [.07,.09) [.09,.10]
    assert owner.tolist() == [0, 0, 1, 1, 1]
    assert not straddling.any()


def test_a_word_shorter_than_half_a_token_still_gets_one():
    segments = segments_from_cuts([0.0, 0.30, 0.33, 0.64])  # the middle word lasts 30 ms
    grid = map_to_tokens(segments, [], 0.64, LFM2)
    assert segments[1].n_tokens == 1
    assert grid.owner.count(1) == 1
    assert "no_tokens" not in segments[1].flags


def test_a_word_whose_only_token_cannot_be_spared_is_flagged():
    # Two 30 ms words inside one 80 ms token whose owner has no other token.
    segments = segments_from_cuts([0.0, 0.02, 0.05, 0.08])
    grid = map_to_tokens(segments, [], 0.08, LFM2)
    assert grid.owner == [1]
    flagged = [s.index for s in segments if "no_tokens" in s.flags]
    assert flagged and all(segments[i].n_tokens == 0 for i in flagged)


@settings(max_examples=80, deadline=None)
@given(
    gaps=st.lists(st.floats(0.01, 0.5), min_size=1, max_size=12),
    lead=st.floats(0.0, 0.3),
    tail=st.floats(0.0, 0.3),
    token=st.sampled_from([0.02, 0.04, 0.08]),
)
def test_every_token_has_one_owner_and_word_spans_are_contiguous_and_ordered(gaps, lead, tail, token):
    cuts = np.concatenate([[lead], lead + np.cumsum(gaps)])
    duration = float(cuts[-1] + tail)
    segments = segments_from_cuts(cuts.tolist())
    grid = map_to_tokens(segments, [], duration, GridSpec("x", token))
    owner = np.array(grid.owner)
    assert owner.size == token_count(duration, GridSpec("x", token))
    assert np.all((owner >= -1) & (owner < len(segments)))
    for segment in segments:
        mine = np.flatnonzero(owner == segment.index)
        if mine.size:
            assert (segment.token_start, segment.token_end) == (mine[0], mine[-1] + 1)
            assert np.all(np.diff(mine) == 1)
    words_only = owner[owner >= 0]
    assert np.all(np.diff(words_only) >= 0)  # words keep their order on the grid


def _assign_one_token_at_a_time(edges_s, duration_s, spec):
    """The plain reading of assign_tokens' contract, one token at a time (the reference for the vectorised one)."""
    n_tokens = tokens.token_count(duration_s, spec)
    segment = np.full(n_tokens, -1)
    straddling = np.zeros(n_tokens, dtype=bool)
    for token in range(n_tokens):
        start = spec.offset_s + token * spec.token_duration_s
        end = min(start + spec.token_duration_s, duration_s)
        first = max(0, int(np.searchsorted(edges_s, start, side="right")) - 1)
        last = min(edges_s.size - 1, int(np.searchsorted(edges_s, end, side="left")))
        overlaps = np.clip(np.minimum(edges_s[first + 1 : last + 1], end) - np.maximum(edges_s[first:last], start), 0, None)
        if overlaps.size:
            segment[token] = first + int(np.argmax(overlaps))
            straddling[token] = np.count_nonzero(overlaps > 1e-6) > 1
    return segment, straddling


@pytest.mark.parametrize("seed", range(20))
def test_vectorised_token_assignment_equals_one_token_at_a_time(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    duration_s = float(rng.uniform(0.5, 30.0))
    inner = np.sort(rng.uniform(0, duration_s, size=int(rng.integers(1, 200))))
    if seed % 3 == 0:  # exact ties and zero-length segments
        inner = np.round(inner, 2)
    edges = np.concatenate([[0.0], inner, [duration_s]])
    spec = tokens.GridSpec(name="test", token_duration_s=float(rng.choice([0.02, 0.04, 0.08])),
                           offset_s=float(rng.choice([0.0, 0.01])))
    monkeypatch.setattr(tokens, "TOKEN_BLOCK", int(rng.choice([7, 512])))  # blocks that cut the grid anywhere
    segment, straddling = tokens.assign_tokens(edges, duration_s, spec)
    expected_segment, expected_straddling = _assign_one_token_at_a_time(edges, duration_s, spec)
    np.testing.assert_array_equal(segment, expected_segment)
    np.testing.assert_array_equal(straddling, expected_straddling)
