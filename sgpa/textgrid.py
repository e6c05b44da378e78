"""A Segmentation as a Praat TextGrid: word, raw CTC and token tiers."""

from __future__ import annotations

from pathlib import Path

from sgpa.io import atomic_write
from sgpa.segmentation import Segmentation


def _word_intervals(segmentation: Segmentation) -> list[tuple[float, float, str]]:
    intervals = [(word.start, word.end, word.text) for word in segmentation.words if word.end > word.start]
    for span in segmentation.context:
        if span.end > span.start:
            intervals.append((span.start, span.end, f"<{span.kind}>"))
    return sorted(intervals)


def _ctc_intervals(segmentation: Segmentation) -> list[tuple[float, float, str]]:
    """Raw CTC spans of the spelled words; interpolated words (guessed spans) are left out."""
    intervals = []
    previous_end = 0.0
    for word in segmentation.words:
        if "interpolated" in word.flags or word.ctc_end <= word.ctc_start:
            continue
        start = max(word.ctc_start, previous_end)
        if word.ctc_end > start:
            intervals.append((start, word.ctc_end, word.text))
            previous_end = word.ctc_end
    return intervals


def _token_intervals(segmentation: Segmentation) -> list[tuple[float, float, str]]:
    grid, duration = segmentation.grid, segmentation.audio.duration_s
    intervals = []
    for token, owner in enumerate(grid.owner):
        start = grid.offset_s + token * grid.token_duration_s
        end = min(start + grid.token_duration_s, duration)
        if end > start:
            intervals.append((start, end, str(owner)))
    return intervals


def save_textgrid(segmentation: Segmentation, path: str | Path) -> None:
    """Write the TextGrid of :func:`write_textgrid` to ``path`` directly (not atomically; see :func:`write_textgrid`)."""
    _textgrid(segmentation).save(str(path), format="long_textgrid", includeBlankSpaces=True, reportingMode="silence")


def write_textgrid(segmentation: Segmentation, path: str | Path) -> Path:
    """Write tiers ``words`` (final segments and context), ``ctc`` (raw spans) and ``tokens``
    (owner word index per token, -1 = context) atomically to ``path``."""
    return atomic_write(path, lambda tmp: save_textgrid(segmentation, tmp))


def _textgrid(segmentation: Segmentation):
    from praatio import textgrid

    duration = segmentation.audio.duration_s
    grid = textgrid.Textgrid()
    for name, intervals in (
        ("words", _word_intervals(segmentation)),
        ("ctc", _ctc_intervals(segmentation)),
        ("tokens", _token_intervals(segmentation)),
    ):
        # Rounded to the microsecond: float sums such as 6 * 0.08 would otherwise overlap their neighbour.
        rounded = [(round(start, 6), round(end, 6), label) for start, end, label in intervals]
        grid.addTier(textgrid.IntervalTier(name, [entry for entry in rounded if entry[1] > entry[0]], 0.0, duration))
    return grid
