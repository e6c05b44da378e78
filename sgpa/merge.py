"""Stage 3: from character spans to word segments that tile the speech region.

Its input is stage 1's word spans (:mod:`sgpa.word_spans`) and stage 2's cuts; two steps, each a small function:

* :func:`build_word_segments` — consecutive words share one cut, so the words tile
  ``[onset, offset]`` with no orphan pause; every word lasts at least ``min_word_duration_s``.
* :func:`merge_into_phrases` — optionally cap the number of players by merging adjacent words.

Leading and trailing non-speech, and pauses between words, become explicit :class:`ContextSpan` objects (:func:`context_spans`).
"""

from __future__ import annotations

import numpy as np

from sgpa.errors import InputError
from sgpa.segmentation import ContextSpan, WordSegment
from sgpa.text import NormalizedWord
from sgpa.word_spans import RawWordSpan


def enforce_min_duration(cuts_s: np.ndarray, min_duration_s: float, duration_s: float) -> np.ndarray:
    """Move cuts as little as needed so that every word lasts at least ``min_duration_s``.

    ``cuts_s`` (``[n + 1]``, non-decreasing) tile ``n`` words; the result stays within
    ``[0, duration_s]``. A forward pass pushes cuts right, a backward pass pulls them back
    left of the audio's end.

    Raises
    ------
    InputError
        The audio is too short to give every word ``min_duration_s``.
    """
    n_words = cuts_s.size - 1
    if n_words * min_duration_s > duration_s + 1e-9:
        raise InputError(
            f"the audio ({duration_s:.2f} s) is too short for {n_words} words of at least "
            f"{min_duration_s * 1000:.0f} ms each"
        )
    cuts = np.clip(cuts_s.astype(np.float64), 0.0, duration_s)
    for index in range(1, cuts.size):
        cuts[index] = max(cuts[index], cuts[index - 1] + min_duration_s)
    cuts[-1] = min(cuts[-1], duration_s)
    for index in range(cuts.size - 2, -1, -1):
        cuts[index] = min(cuts[index], cuts[index + 1] - min_duration_s)
    return np.maximum(cuts, 0.0)


def build_word_segments(
    words: list[NormalizedWord],
    raw: list[RawWordSpan],
    cuts_s: np.ndarray,
    refined: np.ndarray,
    pauses_s: dict[int, tuple[float, float]] | None = None,
) -> list[WordSegment]:
    """Word segments over ``[cuts_s[0], cuts_s[-1]]``: word ``i`` is ``[cuts_s[i], cuts_s[i + 1])``, except where a
    pause separates two words (``pauses_s[i]``, see :func:`sgpa.refine.find_pauses`): word ``i - 1`` then ends where
    the pause starts and word ``i`` starts where it ends, and the pause becomes context (:func:`context_spans`).
    A pause is narrowed so that both words keep at least their stage-1/2 extent on their own side of the cut."""
    starts, ends = np.array(cuts_s[:-1], dtype=float), np.array(cuts_s[1:], dtype=float)
    for index, (pause_start, pause_end) in (pauses_s or {}).items():
        pause_start, pause_end = max(pause_start, starts[index - 1]), min(pause_end, ends[index])
        if pause_end > pause_start:
            ends[index - 1], starts[index] = pause_start, pause_end
    segments = []
    for index, (word, span) in enumerate(zip(words, raw)):
        flags = []
        if span.interpolated:
            flags.append("interpolated")
        elif word.partially_spelled:
            flags.append("partially_spelled")
        segments.append(
            WordSegment(
                index=index,
                text=word.text,
                normalized=word.normalized,
                start=float(starts[index]),
                end=float(ends[index]),
                ctc_start=span.start_s,
                ctc_end=span.end_s,
                start_refined=bool(refined[index]),
                end_refined=bool(refined[index + 1]),
                confidence=span.confidence,
                flags=flags,
            )
        )
    return segments


def context_spans(segments: list[WordSegment], duration_s: float) -> list[ContextSpan]:
    """The non-speech before the first word, every pause between two words, and after the last word (omitted when
    empty), in time order. Context is present in every coalition: never a player, never deleted."""
    spans = []
    if segments[0].start > 0:
        spans.append(ContextSpan(kind="leading", start=0.0, end=segments[0].start))
    for left, right in zip(segments, segments[1:]):
        if right.start > left.end + 1e-9:
            spans.append(ContextSpan(kind="pause", start=left.end, end=right.start))
    if segments[-1].end < duration_s:
        spans.append(ContextSpan(kind="trailing", start=segments[-1].end, end=duration_s))
    return spans


def _join(left: WordSegment, right: WordSegment) -> WordSegment:
    flags = sorted(set(left.flags) | set(right.flags) | {"merged"})
    left_weight, right_weight = left.duration_s, right.duration_s
    total = left_weight + right_weight
    confidence = (left.confidence * left_weight + right.confidence * right_weight) / total if total > 0 else 0.0
    return WordSegment(
        index=left.index,
        text=f"{left.text} {right.text}",
        normalized=" ".join(part for part in (left.normalized, right.normalized) if part),
        start=left.start,
        end=right.end,
        ctc_start=left.ctc_start,
        ctc_end=right.ctc_end,
        start_refined=left.start_refined,
        end_refined=right.end_refined,
        confidence=confidence,
        flags=flags,
    )


def merge_into_phrases(segments: list[WordSegment], max_players: int) -> list[WordSegment]:
    """Merge adjacent words until at most ``max_players`` segments remain.

    Greedy: each step joins the adjacent pair with the shortest combined duration, which keeps
    phrases of similar length; pairs separated by a pause come last (joining them swallows the pause into the
    phrase). Merged segments carry the flag ``"merged"``; indices are renumbered.
    """
    if max_players < 1:
        raise InputError(f"the number of players must be at least 1, got {max_players}")
    merged = list(segments)
    while len(merged) > max_players:
        durations = [
            merged[i].end - merged[i].start + merged[i + 1].end - merged[i + 1].start
            + (1e6 if merged[i + 1].start > merged[i].end + 1e-9 else 0.0)  # a pause between them: join last
            for i in range(len(merged) - 1)
        ]
        pair = int(np.argmin(durations))
        merged[pair : pair + 2] = [_join(merged[pair], merged[pair + 1])]
    for index, segment in enumerate(merged):
        segment.index = index
    return merged
