"""Stage 3: from character spans to word segments that tile the speech region.

Three steps, each a small function:

* :func:`raw_word_spans` — each transcript word's raw CTC extent (first to last character frame);
  words the model could not spell at all are interpolated between their neighbours and flagged;
  :func:`delimiter_times_s` — where the model put the word delimiter between two words (stage 2's default cut).
* :func:`build_word_segments` — consecutive words share one cut, so the words tile
  ``[onset, offset]`` with no orphan pause; every word lasts at least ``min_word_duration_s``.
* :func:`merge_into_phrases` — optionally cap the number of players by merging adjacent words.

Leading and trailing non-speech become explicit :class:`ContextSpan` objects (:func:`context_spans`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgpa.ctc import CharacterAlignment
from sgpa.errors import InputError
from sgpa.segmentation import ContextSpan, WordSegment
from sgpa.text import NormalizedWord

#: Duration given to each interpolated word when it has no room between its neighbours (seconds).
INTERPOLATED_WORD_S = 0.2


@dataclass
class RawWordSpan:
    """A word's raw extent on the CTC path, in seconds, with its mean character confidence."""

    start_s: float
    end_s: float
    confidence: float
    interpolated: bool = False


def _spelled_spans(alignment: CharacterAlignment, n_words: int) -> list[RawWordSpan | None]:
    spans: list[RawWordSpan | None] = []
    step = alignment.frame_duration_s
    for index in range(n_words):
        mine = alignment.word_index == index
        if not mine.any():
            spans.append(None)
            continue
        spans.append(
            RawWordSpan(
                start_s=float(alignment.start_frame[mine].min() * step),
                end_s=float(alignment.end_frame[mine].max() * step),
                confidence=float(alignment.confidence[mine].mean()),
            )
        )
    return spans


def delimiter_times_s(alignment: CharacterAlignment, n_words: int) -> list[float | None]:
    """Centre time of the CTC word delimiter between each pair of consecutive words.

    A model with a word delimiter (``|``) emits it between words; the project's default model was trained to
    emit it inside the true inter-word gap (:mod:`sgpa.training.timed_ctc`), so its centre estimates the cut
    better than the midpoint of the gap between the two words' characters. Always inside that gap (CTC order).

    Returns
    -------
    list of float or None, length ``n_words - 1``
        Seconds; ``None`` where either word has no characters or no delimiter separates them.
    """
    times: list[float | None] = []
    positions = np.arange(alignment.word_index.size)
    for index in range(n_words - 1):
        left = positions[alignment.word_index == index]
        right = positions[alignment.word_index == index + 1]
        between = positions[(positions > left.max()) & (positions < right.min())] if left.size and right.size else []
        delimiters = [p for p in between if alignment.word_index[p] < 0]
        if len(delimiters) != 1:
            times.append(None)
            continue
        (position,) = delimiters
        centre = (alignment.start_frame[position] + alignment.end_frame[position]) / 2
        times.append(float(centre * alignment.frame_duration_s))
    return times


def interpolate_missing(spans: list[RawWordSpan | None], duration_s: float) -> list[RawWordSpan]:
    """Give every ``None`` (unspellable word) a span between its spelled neighbours.

    A run of ``k`` missing words shares the gap between the neighbours equally; when the gap is
    shorter than ``k * INTERPOLATED_WORD_S`` it is widened around its middle (into the neighbours'
    raw spans, which stage 3's tiling then resolves). A run at the start or end of the utterance
    takes ``k * INTERPOLATED_WORD_S`` next to its only neighbour, within the audio.
    Interpolated words have confidence 0.
    """
    result: list[RawWordSpan | None] = list(spans)
    index = 0
    while index < len(result):
        if result[index] is not None:
            index += 1
            continue
        run_end = index
        while run_end < len(result) and result[run_end] is None:
            run_end += 1
        n_missing = run_end - index
        needed = n_missing * INTERPOLATED_WORD_S
        before = result[index - 1] if index > 0 else None
        after = result[run_end] if run_end < len(result) else None
        if before is not None and after is not None:
            low, high = before.end_s, after.start_s
            if high - low < needed:
                middle = (low + high) / 2
                low = max(before.start_s, middle - needed / 2)
                high = min(after.end_s, middle + needed / 2)
        elif after is not None:
            low, high = max(0.0, after.start_s - needed), after.start_s
        elif before is not None:
            low, high = before.end_s, min(duration_s, before.end_s + needed)
        else:  # pragma: no cover - normalize_transcript guarantees a spellable word
            raise InputError("no word of the transcript could be aligned")
        edges = np.linspace(low, high, n_missing + 1)
        for offset in range(n_missing):
            result[index + offset] = RawWordSpan(
                float(edges[offset]), float(edges[offset + 1]), confidence=0.0, interpolated=True
            )
        index = run_end
    return [span for span in result if span is not None]


def raw_word_spans(alignment: CharacterAlignment, n_words: int, duration_s: float) -> list[RawWordSpan]:
    """Each transcript word's raw CTC span; unspellable words interpolated (see :func:`interpolate_missing`)."""
    return interpolate_missing(_spelled_spans(alignment, n_words), duration_s)


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
) -> list[WordSegment]:
    """Word segments tiling ``[cuts_s[0], cuts_s[-1]]``: word ``i`` is ``[cuts_s[i], cuts_s[i + 1])``."""
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
                start=float(cuts_s[index]),
                end=float(cuts_s[index + 1]),
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
    """The non-speech before the first word and after the last one (omitted when empty)."""
    spans = []
    if segments[0].start > 0:
        spans.append(ContextSpan(kind="leading", start=0.0, end=segments[0].start))
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
    phrases of similar length. Merged segments carry the flag ``"merged"``; indices are renumbered.
    """
    if max_players < 1:
        raise InputError(f"the number of players must be at least 1, got {max_players}")
    merged = list(segments)
    while len(merged) > max_players:
        durations = [merged[i].end - merged[i].start + merged[i + 1].end - merged[i + 1].start for i in range(len(merged) - 1)]
        pair = int(np.argmin(durations))
        merged[pair : pair + 2] = [_join(merged[pair], merged[pair + 1])]
    for index, segment in enumerate(merged):
        segment.index = index
    return merged
