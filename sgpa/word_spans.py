"""Stage 1's word-level output: each transcript word's raw extent on the CTC path.

* :func:`raw_word_spans` — each word's first to last character frame, in seconds, with its mean character
  confidence; words the model could not spell at all are interpolated between their neighbours and flagged.
* :func:`delimiter_times_s` — where the model put the word delimiter between two words (stage 2's default cut).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgpa.ctc import CharacterAlignment
from sgpa.errors import InputError

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
