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
    """Each word's span from its first label's start to its last label's end, ``None`` for a word without labels."""
    step = alignment.frame_duration_s
    labels = np.flatnonzero(alignment.word_index >= 0)
    word = alignment.word_index[labels]
    start = np.full(n_words, np.iinfo(np.int64).max)
    end = np.full(n_words, -1)
    np.minimum.at(start, word, alignment.start_frame[labels])
    np.maximum.at(end, word, alignment.end_frame[labels])
    counts = np.bincount(word, minlength=n_words)
    confidence = np.bincount(word, weights=alignment.confidence[labels], minlength=n_words) / np.maximum(counts, 1)
    return [
        RawWordSpan(start_s=float(start[index] * step), end_s=float(end[index] * step),
                    confidence=float(confidence[index]))
        if counts[index] else None
        for index in range(n_words)
    ]


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
    word = alignment.word_index
    spelled = np.flatnonzero(word >= 0)
    delimiters = np.flatnonzero(word < 0)
    # Labels run in transcript order, so each word's labels are contiguous: its last and first label positions bound
    # the labels between it and the next word (sizes of about 50 labels: arrays, not a Python scan per word pair).
    last = np.full(n_words, -1)
    first = np.full(n_words, word.size)
    np.maximum.at(last, word[spelled], spelled)
    np.minimum.at(first, word[spelled], spelled)
    after_left = np.searchsorted(delimiters, last[:-1])
    between = np.searchsorted(delimiters, first[1:]) - after_left
    single = (last[:-1] >= 0) & (first[1:] < word.size) & (between == 1)
    position = delimiters[np.minimum(after_left, max(delimiters.size - 1, 0))] if delimiters.size else after_left
    centre_s = (alignment.start_frame[position] + alignment.end_frame[position]) / 2 * alignment.frame_duration_s
    return [float(centre_s[index]) if single[index] else None for index in range(n_words - 1)]


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
