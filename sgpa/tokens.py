"""Stage 4: mapping word segments onto the target model's audio-token grid.

Token ``t`` of a grid covers ``[offset_s + t * token_duration_s, offset_s + (t + 1) * token_duration_s)``.
Each token is owned by the word (or the context) it overlaps most, so every token belongs to
exactly one player or to context. A word shorter than half a token may win no token by majority;
it then takes the token it overlaps most, if that token's owner keeps at least one other token
(otherwise the word is flagged ``"no_tokens"``: it cannot be masked on this grid).
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from math import ceil

import numpy as np

from sgpa.errors import InputError
from sgpa.segmentation import ContextSpan, TokenGrid, WordSegment

#: Seconds of audio per encoder token for the supported target models.
#: Whisper: 10 ms log-mel frames, a stride-2 convolution (20 ms); Qwen2-Audio adds a stride-2 average pool (40 ms);
#: Voxtral groups 4 encoder frames per LLM embedding (80 ms). Measured from the models in tests/test_hf_backends.py.
GRID_PRESETS = {"lfm2-audio": 0.08, "whisper": 0.02, "wav2vec2": 0.02, "qwen2-audio": 0.04, "voxtral": 0.08}
CONTEXT = -1
#: Overlaps shorter than this (seconds) are rounding noise, not a token straddling a boundary.
_EPSILON_S = 1e-6


@dataclass
class GridSpec:
    name: str
    token_duration_s: float
    offset_s: float = 0.0


def resolve_grid(grid: str | float | GridSpec, offset_s: float = 0.0) -> GridSpec:
    """A grid from a preset name, a custom token duration in seconds, or a :class:`GridSpec`."""
    if isinstance(grid, GridSpec):
        return grid
    if isinstance(grid, str):
        if grid not in GRID_PRESETS:
            raise InputError(f"unknown token grid {grid!r}; choose one of {', '.join(GRID_PRESETS)} or a duration")
        return GridSpec(name=grid, token_duration_s=GRID_PRESETS[grid], offset_s=offset_s)
    if isinstance(grid, bool) or not isinstance(grid, (int, float)):
        raise InputError(f"the token grid must be a preset name or a token duration in seconds, not {grid!r}")
    duration = float(grid)
    if not (math.isfinite(duration) and 0 < duration <= 10.0):
        raise InputError(f"the token duration must be positive and at most 10 s, got {duration}")
    return GridSpec(name=f"custom-{duration * 1000:g}ms", token_duration_s=duration, offset_s=offset_s)


#: Tokens handled at a time by :func:`assign_tokens` (bounds its matrix of token-segment overlaps).
TOKEN_BLOCK = 512


def token_count(duration_s: float, spec: GridSpec) -> int:
    """Tokens needed to cover ``[offset_s, duration_s]``: the last one may extend past the audio."""
    return max(0, ceil(round((duration_s - spec.offset_s) / spec.token_duration_s, 9)))


def assign_tokens(
    edges_s: np.ndarray, duration_s: float, spec: GridSpec
) -> tuple[np.ndarray, np.ndarray]:
    """The segment each token overlaps most, for segments tiling the audio.

    Parameters
    ----------
    edges_s
        ``[m + 1]`` non-decreasing boundaries: segment ``j`` is ``[edges_s[j], edges_s[j + 1])`` — leading context,
        the words and the pauses between them, trailing context, in time order.

    Returns
    -------
    segment : np.ndarray of int, ``[n_tokens]``
        Index of the winning segment (ties go to the earlier one), ``-1`` for a token past the audio.
    straddling : np.ndarray of bool, ``[n_tokens]``
        Tokens overlapping more than one segment by more than a microsecond.
    """
    n_tokens = token_count(duration_s, spec)
    segment = np.full(n_tokens, -1, dtype=np.int64)
    straddling = np.zeros(n_tokens, dtype=bool)
    token_starts = spec.offset_s + np.arange(n_tokens) * spec.token_duration_s
    token_ends = np.minimum(token_starts + spec.token_duration_s, duration_s)  # time past the audio belongs to no one
    # The segments each token touches: from the one holding its start to the one holding its end
    firsts = np.maximum(0, np.searchsorted(edges_s, token_starts, side="right") - 1)
    lasts = np.minimum(edges_s.size - 1, np.searchsorted(edges_s, token_ends, side="left"))
    for block in range(0, n_tokens, TOKEN_BLOCK):  # blocks of tokens against the few segments in their time range
        rows = slice(block, min(block + TOKEN_BLOCK, n_tokens))
        low, high = int(firsts[rows].min()), int(lasts[rows].max())
        if high <= low:
            continue
        segments = np.arange(low, high)
        overlaps = np.clip(np.minimum(edges_s[low + 1 : high + 1], token_ends[rows, None])
                           - np.maximum(edges_s[low:high], token_starts[rows, None]), 0.0, None)
        touched = (segments >= firsts[rows, None]) & (segments < lasts[rows, None])
        overlaps = np.where(touched, overlaps, -1.0)  # below every real overlap: argmax keeps the earliest tie
        has_any = touched.any(axis=1)
        segment[rows] = np.where(has_any, low + np.argmax(overlaps, axis=1), -1)
        straddling[rows] = np.count_nonzero(overlaps > _EPSILON_S, axis=1) > 1
    return segment, straddling


def give_every_word_a_token(owner: np.ndarray, word_spans_s: list[tuple[float, float]], spec: GridSpec) -> list[int]:
    """Hand a token to each word that won none by majority, where the token's owner can spare it.

    Modifies ``owner`` in place; returns the indices of words left without a token.
    """
    without = []
    for word, (start, end) in enumerate(word_spans_s):
        if np.any(owner == word):
            continue
        first = int(np.floor((start - spec.offset_s) / spec.token_duration_s))
        last = int(np.ceil((end - spec.offset_s) / spec.token_duration_s))
        candidates = [t for t in range(max(first, 0), min(last, owner.size))]
        best, best_overlap = None, 0.0
        for token in candidates:
            token_start = spec.offset_s + token * spec.token_duration_s
            overlap = min(end, token_start + spec.token_duration_s) - max(start, token_start)
            if overlap > best_overlap:
                best, best_overlap = token, overlap
        if best is not None and (owner[best] == CONTEXT or np.count_nonzero(owner == owner[best]) > 1):
            owner[best] = word
        else:
            without.append(word)
    return without


def _token_span(owner: np.ndarray, who: int, fallback: int) -> tuple[int, int]:
    mine = np.flatnonzero(owner == who)
    if mine.size == 0:
        return fallback, fallback
    return int(mine[0]), int(mine[-1]) + 1


def map_to_tokens(
    segments: list[WordSegment], context: list[ContextSpan], duration_s: float, spec: GridSpec
) -> TokenGrid:
    """Assign every token of the grid to a word or to context and record each span's token span.

    Sets ``token_start``/``token_end`` on ``segments`` and ``context`` in place (an empty span
    ``[t, t)`` for a word without tokens, ``t`` the token holding its midpoint) and returns the grid.
    """
    # The tiling of the audio: leading context, the words with the pauses between them, trailing context.
    pieces: list[tuple[float, float, int, ContextSpan | None]] = []  # (start, end, owner, context span)
    leading = next((c for c in context if c.kind == "leading"), None)
    pieces.append((min(0.0, segments[0].start), segments[0].start, CONTEXT, leading))
    pauses = {round(c.start, 9): c for c in context if c.kind == "pause"}
    for index, segment in enumerate(segments):
        pieces.append((segment.start, segment.end, index, None))
        if index + 1 < len(segments) and segments[index + 1].start > segment.end + 1e-9:
            pieces.append((segment.end, segments[index + 1].start, CONTEXT, pauses.get(round(segment.end, 9))))
    trailing = next((c for c in context if c.kind == "trailing"), None)
    pieces.append((segments[-1].end, max(duration_s, segments[-1].end), CONTEXT, trailing))
    edges = np.array([piece[0] for piece in pieces] + [pieces[-1][1]])
    winner, straddling = assign_tokens(edges, duration_s, spec)
    owner = np.where(winner >= 0, np.array([piece[2] for piece in pieces])[np.maximum(winner, 0)], CONTEXT)
    word_spans = [(segment.start, segment.end) for segment in segments]
    for word in give_every_word_a_token(owner, word_spans, spec):
        if "no_tokens" not in segments[word].flags:
            segments[word].flags.append("no_tokens")
    for index, segment in enumerate(segments):
        middle = (segment.start + segment.end) / 2
        fallback = int(np.clip((middle - spec.offset_s) // spec.token_duration_s, 0, max(owner.size - 1, 0)))
        segment.token_start, segment.token_end = _token_span(owner, index, fallback)
    for position, (start, end, _, span) in enumerate(pieces):
        if span is None:
            continue
        mine = np.flatnonzero((winner == position) & (owner == CONTEXT))
        if mine.size:
            span.token_start, span.token_end = int(mine[0]), int(mine[-1]) + 1
        else:  # a context span too short to win a token sits, empty, where its time falls
            at = int(np.clip(np.ceil(round((start - spec.offset_s) / spec.token_duration_s, 9)), 0, owner.size))
            span.token_start = span.token_end = at
    return TokenGrid(
        name=spec.name,
        token_duration_s=spec.token_duration_s,
        offset_s=spec.offset_s,
        n_tokens=int(owner.size),
        owner=[int(value) for value in owner],
        straddling_tokens=int(np.count_nonzero(straddling)),
    )
