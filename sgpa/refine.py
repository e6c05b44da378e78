"""Stage 2: spectral-flux boundary refinement.

CTC spans are peaky: a word's characters fire on a few frames and the pause between two words is
mostly blanks, so the raw "gap" between words says little about where one word acoustically ends.
Each cut between consecutive words is therefore searched inside the raw gap widened by
``padding_s`` on both sides, at the minimum of a cost that mixes normalised short-time energy
(weight ``alpha``) and spectral flux (weight ``1 - alpha``), computed every ``hop_s`` seconds.
The minimum is accepted only if it is a real energy dip: its RMS energy must be below
``accept_ratio`` times the median RMS energy of the two neighbouring words. Otherwise the cut falls
back to the midpoint of the raw gap and is marked not refined.

The outer edges (speech onset before the first word, offset after the last) are moved to where
the energy crosses the same threshold, searched within ``edge_padding_s`` outside the raw span.

Measured (``benchmarks/``): the edges gain from this; the cuts between words do not (stage 1's own
estimate, the CTC word delimiter or the gap midpoint, is closer to the truth), so searching them is opt-in:
``refine_interior=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sgpa.audio import FRAME_BLOCK, frame_rms, frame_signal


@dataclass
class RefinementParameters:
    """Stage-2 settings.

    Defaults were chosen by ``benchmarks/alignment.py`` (grid search on festival/flite speech with
    exact word times and simulated CTC spans; see ``benchmarks/results/alignment.md``). Most
    word boundaries in connected speech have no pause, and energy dips inside words (stop
    closures) are as deep as those between them, so the search window is kept narrow and only
    deep dips are accepted; the outer edges gain most from refinement.
    """

    padding_s: float = 0.01
    alpha: float = 0.5
    accept_ratio: float = 0.05
    edge_padding_s: float = 0.1
    #: How much further the utterance's offset is followed while the energy stays above threshold at the end
    #: of the ``edge_padding_s`` search: the default model fires a final character up to ~150 ms early (before a
    #: final fricative or release). Chosen on the training voices' dev set; following the onset back the same
    #: way measured worse there, so the onset search is unchanged.
    offset_extension_s: float = 0.5
    #: Search the cuts between words too. Off by default: on held-out voices with exact word times stage 1's
    #: own cut is closer to the truth than the refined one (benchmarks/results/alignment_shipped_model.md and
    #: ctc_accuracy.md), because most word boundaries in connected speech have no pause and dips inside words
    #: are as deep as those between them.
    refine_interior: bool = False
    hop_s: float = 0.005
    window_s: float = 0.02

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class AcousticFeatures:
    """Frame-level features at ``hop_s`` seconds per frame; frame ``k`` is centred on ``k * hop_s``.

    ``rms`` is linear RMS amplitude; ``cost`` the combined refinement cost (lower = better cut), ``None`` where it
    was not asked for (only the search of the cuts between words reads it).
    """

    rms: np.ndarray
    cost: np.ndarray | None
    hop_s: float

    def frame_at(self, time_s: float) -> int:
        return int(np.clip(round(time_s / self.hop_s), 0, self.rms.size - 1))


def spectral_flux(waveform: np.ndarray, hop_length: int, frame_length: int) -> np.ndarray:
    """L2 distance between consecutive log-compressed magnitude spectra, ``[1 + n_samples // hop_length]``.

    Frame ``k`` holds the change from frame ``k - 1`` to ``k`` (0 for the first frame).
    """
    import scipy.fft

    # float32 throughout (scipy.fft keeps it; numpy's FFT would promote to float64): half the memory traffic, and
    # the flux is only ranked and compared against percentiles, far above float32's resolution.
    frames = frame_signal(waveform, frame_length, hop_length, dtype=np.float32)  # a strided view, taken in blocks
    window = np.hanning(frame_length).astype(np.float32)
    flux = np.zeros(len(frames))
    previous = None  # the last spectrum of the block before, so that its difference crosses the block boundary
    for start in range(0, len(frames), FRAME_BLOCK):
        spectra = scipy.fft.rfft(frames[start : start + FRAME_BLOCK] * window, axis=1)
        magnitude = np.log1p(np.float32(100.0) * np.abs(spectra))
        stacked = magnitude if previous is None else np.concatenate([previous, magnitude])
        first = start + 1 if previous is None else start  # the frame whose change stacked[1] - stacked[0] is
        change = np.diff(stacked, axis=0)
        flux[first : first + len(stacked) - 1] = np.sqrt(np.einsum("ij,ij->i", change, change))
        previous = magnitude[-1:]
    return flux


def normalise(values: np.ndarray, low_percentile: float = 5, high_percentile: float = 95) -> np.ndarray:
    """Map ``values`` to ``[0, 1]`` between two of their percentiles (robust to a few outliers)."""
    low, high = np.percentile(values, [low_percentile, high_percentile])
    if high <= low:
        return np.zeros_like(values, dtype=np.float64)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def acoustic_features(
    waveform: np.ndarray,
    sample_rate: int,
    parameters: RefinementParameters,
    rms: np.ndarray | None = None,
    with_cost: bool = True,
) -> AcousticFeatures:
    """Energy and the combined cost ``alpha * energy_dB + (1 - alpha) * flux``, both normalised per utterance.

    ``rms``: the frames' RMS at the parameters' hop and window, when the caller has it already. ``with_cost=False``
    skips the cost (the spectral flux is stage 2's largest expense, and the outer edges need only the energy).
    """
    hop_length = max(1, round(parameters.hop_s * sample_rate))
    frame_length = max(hop_length, round(parameters.window_s * sample_rate))
    if rms is None:
        rms = frame_rms(waveform, frame_length, hop_length)
    if not with_cost:
        return AcousticFeatures(rms=rms, cost=None, hop_s=hop_length / sample_rate)
    energy = normalise(20 * np.log10(rms + 1e-8))
    flux = normalise(spectral_flux(waveform, hop_length, frame_length), 0, 95)
    cost = parameters.alpha * energy + (1 - parameters.alpha) * flux
    return AcousticFeatures(rms=rms, cost=cost, hop_s=hop_length / sample_rate)


def _median_rms(features: AcousticFeatures, start_s: float, end_s: float) -> float:
    first, last = features.frame_at(start_s), features.frame_at(end_s)
    return float(np.median(features.rms[first : max(last, first + 1)]))


def refine_cut(
    features: AcousticFeatures,
    left_span_s: tuple[float, float],
    right_span_s: tuple[float, float],
    parameters: RefinementParameters,
    fallback_s: float | None = None,
) -> tuple[float, bool]:
    """The cut between a word with raw span ``left_span_s`` and the next word with ``right_span_s``.

    Returns ``(cut_s, refined)``: the cost minimum inside the padded gap if it is a real energy dip,
    otherwise ``fallback_s`` (default: the raw gap midpoint) and ``False``.
    """
    gap_start, gap_end = sorted((left_span_s[1], right_span_s[0]))
    midpoint = (gap_start + gap_end) / 2 if fallback_s is None else fallback_s
    search_start = max(gap_start - parameters.padding_s, left_span_s[0])
    search_end = min(gap_end + parameters.padding_s, right_span_s[1])
    first, last = features.frame_at(search_start), features.frame_at(search_end)
    if last <= first:
        return midpoint, False
    best = first + int(np.argmin(features.cost[first : last + 1]))
    words_rms = np.median(
        [_median_rms(features, *left_span_s), _median_rms(features, *right_span_s)]
    )
    if features.rms[best] < parameters.accept_ratio * words_rms:
        return best * features.hop_s, True
    return midpoint, False


def refine_onset(
    features: AcousticFeatures, span_s: tuple[float, float], parameters: RefinementParameters
) -> tuple[float, bool]:
    """Speech onset before the first word: where the energy first reaches the word's threshold.

    Searched from ``edge_padding_s`` before the raw start to ``padding_s`` after it; ``(raw_start, False)``
    when the energy is already above threshold at the start of the search (onset not found).
    """
    threshold = parameters.accept_ratio * _median_rms(features, *span_s)
    first = features.frame_at(span_s[0] - parameters.edge_padding_s)
    last = features.frame_at(min(span_s[0] + parameters.padding_s, span_s[1]))
    loud = np.flatnonzero(features.rms[first : last + 1] >= threshold)
    if loud.size == 0 or loud[0] == 0:
        return span_s[0], False
    return (first + loud[0]) * features.hop_s, True


def refine_offset(
    features: AcousticFeatures, span_s: tuple[float, float], parameters: RefinementParameters
) -> tuple[float, bool]:
    """Speech offset after the last word: the end of the last frame at or above the word's threshold.

    Searched from ``padding_s`` before the raw end to ``edge_padding_s`` after it; when the energy is still
    above threshold at the end of the search (the model fired the last character early, as it often does
    before a final fricative or release), the offset is followed while the energy stays above it, for at most
    ``offset_extension_s`` more. ``(raw_end, False)`` when no offset is found.
    """
    threshold = parameters.accept_ratio * _median_rms(features, *span_s)
    first = features.frame_at(max(span_s[1] - parameters.padding_s, span_s[0]))
    last = features.frame_at(span_s[1] + parameters.edge_padding_s)
    loud = np.flatnonzero(features.rms[first : last + 1] >= threshold)
    if loud.size == 0:
        return span_s[1], False
    offset = first + loud[-1]
    if offset == last:
        limit = features.frame_at(span_s[1] + parameters.edge_padding_s + parameters.offset_extension_s)
        while offset < limit and features.rms[offset + 1] >= threshold:
            offset += 1
        if offset == limit:
            return span_s[1], False
    return (offset + 1) * features.hop_s, True


def refine_boundaries(
    waveform: np.ndarray,
    sample_rate: int,
    spans_s: list[tuple[float, float]],
    parameters: RefinementParameters,
    fixed: list[bool] | None = None,
    anchors_s: list[float | None] | None = None,
    rms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut points tiling the words, from their raw spans.

    Parameters
    ----------
    waveform
        Mono audio, ``[n_samples]``.
    spans_s
        Raw ``(start_s, end_s)`` of each of the ``n`` words, in transcript order.
    fixed
        Per word: ``True`` keeps both of its boundaries unrefined (interpolated words, whose raw
        span is a guess that energy cannot confirm).
    anchors_s
        Per cut between words (``n - 1`` entries): stage 1's own estimate of it, e.g. the centre of the CTC
        word delimiter (:func:`sgpa.word_spans.delimiter_times_s`), used wherever the cut is not moved by the
        acoustic evidence; ``None`` (or no list) means the raw gap midpoint.
    rms
        The frames' RMS at the parameters' hop and window (:func:`sgpa.audio.frame_rms`), when the caller has it.

    Returns
    -------
    cuts_s : np.ndarray, shape ``[n + 1]``
        ``cuts_s[0]`` speech onset, ``cuts_s[i]`` the cut between word ``i - 1`` and word ``i``,
        ``cuts_s[n]`` speech offset; non-decreasing.
    refined : np.ndarray of bool, shape ``[n + 1]``
        Whether each cut was moved by the acoustic evidence (else: raw edge, anchor or gap midpoint).
    """
    n_words = len(spans_s)
    fixed = fixed or [False] * n_words
    # the cost is read only where the cuts between words are searched
    features = acoustic_features(waveform, sample_rate, parameters, rms=rms, with_cost=parameters.refine_interior)
    cuts = np.zeros(n_words + 1)
    refined = np.zeros(n_words + 1, dtype=bool)
    if fixed[0]:
        cuts[0] = spans_s[0][0]
    else:
        cuts[0], refined[0] = refine_onset(features, spans_s[0], parameters)
    for index in range(1, n_words):
        left, right = spans_s[index - 1], spans_s[index]
        anchor = anchors_s[index - 1] if anchors_s is not None else None
        if fixed[index - 1] or fixed[index]:
            cuts[index] = (left[1] + right[0]) / 2
        elif not parameters.refine_interior:
            cuts[index] = (left[1] + right[0]) / 2 if anchor is None else anchor
        else:
            cuts[index], refined[index] = refine_cut(features, left, right, parameters, fallback_s=anchor)
    if fixed[-1]:
        cuts[-1] = spans_s[-1][1]
    else:
        cuts[-1], refined[-1] = refine_offset(features, spans_s[-1], parameters)
    return np.maximum.accumulate(cuts), refined


#: Shortest silence between two words that becomes a pause: explicit context, never part of a word. Below it, the
#: gap is split between the two words as before (stop closures and short breaks are part of connected speech).
MIN_PAUSE_S = 0.2


def find_pauses(
    waveform: np.ndarray,
    sample_rate: int,
    raw_spans_s: list[tuple[float, float]],
    min_pause_s: float = MIN_PAUSE_S,
    detector: str = "energy",
    hop_s: float = 0.005,
    quiet: np.ndarray | None = None,
) -> dict[int, tuple[float, float]]:
    """Pauses between consecutive words: ``{i: (start_s, end_s)}`` for the boundary between word ``i - 1`` and ``i``.

    Between the two words' raw CTC spans, the longest run of frames without speech (:func:`sgpa.vad.quiet_frames`:
    below the speech gate's energy threshold, or outside Silero VAD's speech) is a pause when it lasts at least
    ``min_pause_s``. Quiet frames only: a word the model ended early keeps its tail. ``quiet``: that mask, when the
    caller has it already.
    """
    from sgpa.vad import quiet_frames

    if quiet is None:
        quiet = quiet_frames(waveform, sample_rate, detector, hop_s=hop_s)
    hop = max(1, round(hop_s * sample_rate)) / sample_rate
    pauses: dict[int, tuple[float, float]] = {}
    for index in range(1, len(raw_spans_s)):
        first = int(np.ceil(raw_spans_s[index - 1][1] / hop))
        last = int(np.floor(raw_spans_s[index][0] / hop))
        best_start, best_length, run_start = 0, 0, None
        for frame in range(first, min(last, quiet.size - 1) + 1):
            if quiet[frame]:
                run_start = frame if run_start is None else run_start
                if frame - run_start + 1 > best_length:
                    best_start, best_length = run_start, frame - run_start + 1
            else:
                run_start = None
        if best_length * hop >= min_pause_s:
            pauses[index] = (best_start * hop, (best_start + best_length) * hop)
    return pauses


def speech_extent_s(
    waveform: np.ndarray,
    sample_rate: int,
    threshold_ratio: float = 0.05,
    margin_s: float = 0.05,
    hop_s: float = 0.005,
    window_s: float = 0.02,
    detector: str = "energy",
    quiet: np.ndarray | None = None,
) -> tuple[float, float]:
    """Where speech starts and ends, widened by ``margin_s`` on both sides (clipped to the audio).

    ``detector="energy"``: the first and last frame whose RMS reaches ``threshold_ratio`` times the utterance's
    95th-percentile RMS; ``"silero"``: the first and last frame of Silero VAD's speech (:mod:`sgpa.vad`).
    Returns ``(onset_s, offset_s)``; the whole audio when no speech is found. ``quiet``: the detector's mask
    (:func:`sgpa.vad.quiet_frames` at this hop), when the caller has it already.
    """
    from sgpa.vad import quiet_frames

    hop_length = max(1, round(hop_s * sample_rate))
    if quiet is None:
        quiet = quiet_frames(waveform, sample_rate, detector, hop_s=hop_s, window_s=window_s,
                             threshold_ratio=threshold_ratio)
    loud = np.flatnonzero(~quiet)
    duration_s = waveform.size / sample_rate
    if loud.size == 0:
        return 0.0, duration_s
    hop = hop_length / sample_rate
    return max(0.0, loud[0] * hop - margin_s), min(duration_s, (loud[-1] + 1) * hop + margin_s)
