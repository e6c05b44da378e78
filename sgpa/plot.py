"""A picture of a segmentation: waveform and spectrogram with raw and refined boundaries.

Figures are built with matplotlib's object-oriented ``Figure`` (no pyplot, no ``matplotlib.use``), so a notebook
keeps its own backend and nothing accumulates in pyplot's figure registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgpa.io import atomic_write
from sgpa.segmentation import Segmentation


def segmentation_figure(segmentation: Segmentation, waveform: np.ndarray) -> Any:
    """A matplotlib ``Figure``: waveform (top) and log spectrogram (bottom) of ``waveform`` (``[n_samples]`` at the
    segmentation's sample rate), refined cuts as solid lines, raw CTC word edges dashed, word labels
    above, and the target token grid as ticks."""
    from matplotlib.figure import Figure

    rate = segmentation.audio.sample_rate
    times = np.arange(waveform.size) / rate
    duration = segmentation.audio.duration_s
    figure = Figure(figsize=(min(max(8.0, 1.6 * duration + 2), 40.0), 5.5))
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(times, waveform, linewidth=0.4, color="0.3")
    top.set_ylabel("amplitude")
    bottom.specgram(waveform, NFFT=400, Fs=rate, noverlap=240, cmap="magma")
    bottom.set_ylabel("Hz")
    bottom.set_xlabel("time (s)")
    for axis in (top, bottom):
        for span in segmentation.context:
            if span.kind == "pause":
                axis.axvspan(span.start, span.end, color="0.85", alpha=0.6, linewidth=0)
        for word in segmentation.words:
            for edge, refined in ((word.start, word.start_refined), (word.end, word.end_refined)):
                axis.axvline(edge, color="tab:green" if refined else "tab:orange", linewidth=1.2)
            for edge in (word.ctc_start, word.ctc_end):
                axis.axvline(edge, color="tab:blue", linewidth=0.8, linestyle="--")
    for word in segmentation.words:
        top.text((word.start + word.end) / 2, 1.02, word.text, transform=top.get_xaxis_transform(),
                 ha="center", va="bottom", fontsize=8, rotation=30)
    grid = segmentation.grid
    token_edges = grid.offset_s + grid.token_duration_s * np.arange(grid.n_tokens + 1)
    bottom.plot(token_edges, np.zeros_like(token_edges), "|", color="white", markersize=6)
    bottom.set_xlim(0, duration)
    top.set_title(
        f"solid: final cuts (green moved by stage 2, orange kept from stage 1)  dashed: raw CTC spans  grey: pauses  "
        f"grid: {grid.name} ({grid.token_duration_s * 1000:g} ms tokens)",
        fontsize=8, pad=28,
    )
    figure.tight_layout()
    return figure


def plot_segmentation(segmentation: Segmentation, waveform: np.ndarray, path: str | Path) -> Path:
    """Write :func:`segmentation_figure` as a PNG, atomically."""
    figure = segmentation_figure(segmentation, waveform)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
