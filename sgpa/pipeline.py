"""The SGPA pipeline: audio + transcript → word segments on a target model's token grid.

``align`` runs the four stages in order on plain data:

1. :mod:`sgpa.ctc` — emissions and forced alignment → character spans
2. :mod:`sgpa.refine` — cuts between words moved to real energy dips
3. :mod:`sgpa.merge` — words tiling the speech region, context spans, optional phrase cap
4. :mod:`sgpa.tokens` — every token of the target grid owned by one word or by context
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.audio import MAX_DURATION_S, frame_rms, load_audio, resample, validate_waveform, waveform_info
from sgpa.ctc import (
    AcousticModel,
    align_characters,
    compute_emissions,
    label_sequence,
    min_frames_needed,
    restrict_to_frames,
)
from sgpa.errors import InputError
from sgpa.merge import build_word_segments, context_spans, enforce_min_duration, merge_into_phrases
from sgpa.refine import MIN_PAUSE_S, RefinementParameters, find_pauses, refine_boundaries, speech_extent_s
from sgpa.segmentation import ModelInfo, Quality, Segmentation, TranscriptInfo
from sgpa.text import NormalizedWord, expand_word, normalize_transcript
from sgpa.tokens import GRID_PRESETS, GridSpec, map_to_tokens, resolve_grid
from sgpa.vad import FRAME_HOP_S, FRAME_WINDOW_S, quiet_frames
from sgpa.word_spans import RawWordSpan, delimiter_times_s, raw_word_spans

#: The rate every waveform is brought to (the acoustic models' and the backends').
SAMPLE_RATE = 16000

#: Shortest word segment after tiling (seconds): one CTC frame is not a word.
MIN_WORD_DURATION_S = 0.05

#: A word whose characters' mean CTC confidence is below this is flagged ``low_confidence``: on the held-out sets
#: such words have twice the median boundary error (37 vs 18 ms) and twice the rate of errors above 100 ms.
LOW_CONFIDENCE = 0.05
#: An utterance most of whose words are below this confidence gets a warning: the one held-out utterance of 130
#: that was had a mean boundary error of 98 ms (27 ms for the others).
UNSURE_CONFIDENCE = 0.1

#: Where a cut between two words starts from: the word delimiter's centre, or the characters' gap midpoint;
#: ``auto`` takes the delimiter for models trained to put it in the gap (``AcousticModel.delimiter_marks_gaps``).
INTERIOR_CUTS = ("auto", "delimiter", "midpoint")

_REFINEMENT = RefinementParameters()


@dataclass(frozen=True)
class AlignConfig:
    """Every setting of the four SGPA stages; the defaults are the measured ones (see the README).

    Attributes
    ----------
    grid
        Stage 4's target token grid: a preset (``"lfm2-audio"`` 80 ms, ``"whisper"`` / ``"wav2vec2"`` 20 ms) or a
        token duration in seconds.
    token_offset_s
        Start of the first token, seconds.
    padding_s, alpha, accept_ratio, edge_padding_s, offset_extension_s, refine_interior
        Stage 2 (see :class:`sgpa.refine.RefinementParameters`): search padding around the raw gap, weight of
        energy vs spectral flux, the energy-dip acceptance ratio, the search window outside the outer edges,
        how far the offset is followed while the energy stays up, and whether cuts between words are searched
        too (off: stage 1's cut measured closer).
    min_word_duration_s
        Shortest word segment after tiling, seconds.
    max_players
        Merge adjacent words into at most this many phrases (``None``: every word is a player).
    max_duration_s
        Longest audio accepted, seconds (``None``: no limit).
    speech_gate
        No CTC label before the energy onset or after the energy offset of the speech.
    interior_cut
        Where a cut between words starts: ``"delimiter"`` (centre of the CTC word delimiter between them),
        ``"midpoint"`` (of the gap between their characters), or ``"auto"``: the delimiter for models trained to
        emit it in the gap (the shipped one), else the midpoint — with a plain-CTC model the delimiter measured
        worse.
    min_pause_s
        Quiet stretches between two words at least this long become pause context spans, present in every
        coalition and part of no word (0: none; every gap is split between its two words, as before).
    speech_detector
        What finds the speech for the speech gate and the pauses: ``"energy"`` (a frame RMS threshold) or
        ``"silero"`` (Silero VAD, see :mod:`sgpa.vad`).
    """

    grid: str | float = "lfm2-audio"
    token_offset_s: float = 0.0
    padding_s: float = _REFINEMENT.padding_s
    alpha: float = _REFINEMENT.alpha
    accept_ratio: float = _REFINEMENT.accept_ratio
    edge_padding_s: float = _REFINEMENT.edge_padding_s
    offset_extension_s: float = _REFINEMENT.offset_extension_s
    refine_interior: bool = _REFINEMENT.refine_interior
    min_word_duration_s: float = MIN_WORD_DURATION_S
    max_players: int | None = None
    max_duration_s: float | None = MAX_DURATION_S
    speech_gate: bool = True
    interior_cut: str = "auto"
    min_pause_s: float = MIN_PAUSE_S
    speech_detector: str = "energy"

    #: Allowed range of each numeric setting (inclusive), checked by :meth:`validate`.
    RANGES = {
        "token_offset_s": (0.0, 10.0),
        "padding_s": (0.0, 1.0),
        "alpha": (0.0, 1.0),
        "accept_ratio": (0.0, 1.0),
        "edge_padding_s": (0.0, 2.0),
        "offset_extension_s": (0.0, 5.0),
        "min_word_duration_s": (0.0, 1.0),
        "max_duration_s": (0.001, 86_400.0),
        "min_pause_s": (0.0, 60.0),
    }

    def validate(self) -> AlignConfig:
        """Raise :class:`InputError` for a setting out of its range; return ``self`` for chaining."""
        for name, (low, high) in self.RANGES.items():
            value = getattr(self, name)
            if value is None and name == "max_duration_s":
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
                raise InputError(f"{name} must be a number between {low:g} and {high:g}, not {value!r}")
        if self.max_players is not None and (not isinstance(self.max_players, int) or self.max_players < 1):
            raise InputError(f"max_players must be a whole number of at least 1, not {self.max_players!r}")
        from sgpa.vad import SPEECH_DETECTORS

        if self.speech_detector not in SPEECH_DETECTORS:
            raise InputError(f"speech_detector must be one of {', '.join(SPEECH_DETECTORS)}, not {self.speech_detector!r}")
        if self.interior_cut not in INTERIOR_CUTS:
            raise InputError(f"interior_cut must be one of {', '.join(INTERIOR_CUTS)}, not {self.interior_cut!r}")
        self.grid_spec()
        return self

    def with_overrides(self, **overrides: Any) -> AlignConfig:
        """A copy with some settings replaced; ``InputError`` for a name that is not a setting."""
        unknown = sorted(set(overrides) - {f.name for f in fields(self)})
        if unknown:
            raise InputError(f"unknown alignment setting(s): {', '.join(unknown)}")
        return replace(self, **overrides)

    def grid_spec(self) -> GridSpec:
        return resolve_grid(self.grid, self.token_offset_s)

    def refinement(self) -> RefinementParameters:
        return RefinementParameters(
            padding_s=self.padding_s,
            alpha=self.alpha,
            accept_ratio=self.accept_ratio,
            edge_padding_s=self.edge_padding_s,
            offset_extension_s=self.offset_extension_s,
            refine_interior=self.refine_interior,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The grid presets stage 4 knows (for choices in the command line and the service).
GRIDS = tuple(GRID_PRESETS)


def gate_to_speech(
    log_probs: np.ndarray,
    label_ids: np.ndarray,
    waveform: np.ndarray,
    sample_rate: int,
    acoustic_model: AcousticModel,
    detector: str = "energy",
    quiet: np.ndarray | None = None,
) -> np.ndarray:
    """Only blanks before the energy onset and after the energy offset of the speech (see ``speech_extent_s``).

    Left as it is when the speech region would be too short to spell the transcript. ``quiet``: the speech
    detector's mask of 5 ms frames without speech (:func:`sgpa.vad.quiet_frames`), when the caller has it.
    """
    onset_s, offset_s = speech_extent_s(waveform, sample_rate, detector=detector, quiet=quiet)
    frame_s = acoustic_model.frame_duration_s
    first, end = int(onset_s / frame_s), min(log_probs.shape[0], int(np.ceil(offset_s / frame_s)))
    if end - first < min_frames_needed(label_ids):
        return log_probs
    return restrict_to_frames(log_probs, acoustic_model.blank_id, first, end)


def _waveform_and_info(
    audio: str | Path | np.ndarray, rate: int, sample_rate: int | None, max_duration_s: float | None
) -> tuple[np.ndarray, Any]:
    if isinstance(audio, np.ndarray):
        given_rate = sample_rate or rate
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1)
        validate_waveform(waveform, given_rate, max_duration_s=max_duration_s)
        waveform = resample(waveform, given_rate, rate)
        return waveform, waveform_info(waveform, rate)
    return load_audio(audio, sample_rate=rate, max_duration_s=max_duration_s)


def align_timed(
    audio: str | Path | np.ndarray,
    transcript: str,
    acoustic_model: AcousticModel,
    config: AlignConfig | None = None,
    *,
    sample_rate: int | None = None,
    **overrides: Any,
) -> tuple[Segmentation, dict[str, float]]:
    """:func:`align`, also returning wall-clock seconds per step.

    The timings dict has ``load_audio_s``, ``forward_s`` (the model's emissions), ``stage1_s``
    (normalisation + forced alignment), ``stage2_s``, ``stage3_s`` and ``stage4_s``.
    """
    config = (config or AlignConfig()).with_overrides(**overrides).validate()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    rate = acoustic_model.sample_rate
    waveform, info = _waveform_and_info(audio, rate, sample_rate, config.max_duration_s)
    spec = config.grid_spec()
    refinement = config.refinement()
    words = normalize_transcript(transcript, acoustic_model.characters)
    now = time.perf_counter()
    timings["load_audio_s"], clock = now - clock, now

    log_probs = compute_emissions(acoustic_model, waveform)
    now = time.perf_counter()
    timings["forward_s"], clock = now - clock, now

    label_ids, word_index = label_sequence(words, acoustic_model.vocabulary, acoustic_model.word_delimiter)
    # One pass of frame energies and one speech mask for the speech gate, stage 2's cost and stage 3's pauses (they
    # share the 5 ms hop and 20 ms window; each computed its own before, three passes and two detector runs).
    rms = quiet = None
    if (refinement.hop_s, refinement.window_s) == (FRAME_HOP_S, FRAME_WINDOW_S):
        hop_length = max(1, round(FRAME_HOP_S * rate))
        rms = frame_rms(waveform, max(hop_length, round(FRAME_WINDOW_S * rate)), hop_length)
    if config.speech_gate or config.min_pause_s > 0:
        quiet = quiet_frames(waveform, rate, config.speech_detector, hop_s=FRAME_HOP_S, window_s=FRAME_WINDOW_S,
                             rms=rms)
    if config.speech_gate:
        log_probs = gate_to_speech(log_probs, label_ids, waveform, rate, acoustic_model, config.speech_detector,
                                   quiet=quiet)
    characters = align_characters(
        log_probs, label_ids, word_index, acoustic_model.blank_id, acoustic_model.frame_duration_s
    )
    raw = raw_word_spans(characters, len(words), info.duration_s)
    interior_cut = config.interior_cut
    if interior_cut == "auto":
        interior_cut = "delimiter" if acoustic_model.delimiter_marks_gaps else "midpoint"
    anchors = delimiter_times_s(characters, len(words)) if interior_cut == "delimiter" else None
    now = time.perf_counter()
    timings["stage1_s"], clock = now - clock, now

    interpolated = [span.interpolated for span in raw]
    cuts, refined = refine_boundaries(
        waveform, rate, [(span.start_s, span.end_s) for span in raw], refinement, fixed=interpolated, anchors_s=anchors,
        rms=rms,
    )
    # Cuts between two spelled words; with refine_interior off they all stay at stage 1's cut (counted as fallbacks).
    attempted = [
        not (interpolated[index - 1] or interpolated[index]) for index in range(1, len(words))
    ]
    n_attempted = sum(attempted)
    n_fallbacks = sum(1 for index, tried in enumerate(attempted, start=1) if tried and not refined[index])
    now = time.perf_counter()
    timings["stage2_s"], clock = now - clock, now

    cuts = enforce_min_duration(cuts, config.min_word_duration_s, info.duration_s)
    raw_spans = [(span.start_s, span.end_s) for span in raw]
    pauses = (find_pauses(waveform, rate, raw_spans, config.min_pause_s, config.speech_detector, hop_s=FRAME_HOP_S,
                          quiet=quiet)
              if config.min_pause_s > 0 else {})
    segments = build_word_segments(words, raw, cuts, refined, pauses)
    if config.max_players is not None:
        segments = merge_into_phrases(segments, config.max_players)
    context = context_spans(segments, info.duration_s)
    now = time.perf_counter()
    timings["stage3_s"], clock = now - clock, now

    token_grid = map_to_tokens(segments, context, info.duration_s, spec)
    timings["stage4_s"] = time.perf_counter() - clock

    confidences = [segment.confidence for segment in segments]
    for segment in segments:
        if segment.confidence < LOW_CONFIDENCE and "interpolated" not in segment.flags:
            segment.flags.append("low_confidence")
    unsure = sum(confidence < UNSURE_CONFIDENCE for confidence in confidences)
    warnings = []
    if unsure > len(segments) / 2:
        warnings.append(
            f"most words could not be placed with confidence ({unsure} of {len(segments)} below "
            f"{UNSURE_CONFIDENCE:g}): check that the transcript matches the audio before explaining it"
        )
    segmentation = Segmentation(
        audio=info,
        transcript=TranscriptInfo(
            raw=transcript, normalized=" ".join(word.normalized for word in words if word.normalized)
        ),
        model=ModelInfo(
            id=acoustic_model.name,
            revision=acoustic_model.revision,
            frame_duration_s=acoustic_model.frame_duration_s,
        ),
        parameters={
            **refinement.to_dict(),
            "min_word_duration_s": config.min_word_duration_s,
            "max_players": config.max_players,
            "speech_gate": config.speech_gate,
            "interior_cut": interior_cut,
            "min_pause_s": config.min_pause_s,
            "speech_detector": config.speech_detector,
            "grid": spec.name,
            "token_duration_s": spec.token_duration_s,
            "token_offset_s": spec.offset_s,
        },
        words=segments,
        context=context,
        grid=token_grid,
        quality=Quality(
            n_boundaries=n_attempted,
            refinement_fallback_rate=n_fallbacks / n_attempted if n_attempted else 0.0,
            mean_confidence=float(np.mean(confidences)),
            min_confidence=float(np.min(confidences)),
            n_interpolated_words=sum(interpolated),
            straddling_tokens=token_grid.straddling_tokens,
            low_confidence_words=sum("low_confidence" in segment.flags for segment in segments),
            warnings=warnings,
        ),
    )
    return segmentation, timings


def align(
    audio: str | Path | np.ndarray,
    transcript: str,
    acoustic_model: AcousticModel,
    config: AlignConfig | None = None,
    *,
    sample_rate: int | None = None,
    **overrides: Any,
) -> Segmentation:
    """Align ``transcript`` to ``audio`` and map its words onto a target model's token grid.

    Parameters
    ----------
    audio
        A file path, or a waveform (``[n_samples]`` or ``[n_samples, n_channels]``) at
        ``sample_rate`` Hz (default: the acoustic model's rate).
    transcript
        What is said, as free text (numerals and symbols are spelled out).
    acoustic_model
        From :func:`sgpa.ctc.load_ctc_model`; loaded once, reused across calls.
    config
        The stage settings (:class:`AlignConfig`; default: its measured defaults).
    sample_rate
        Rate of a waveform given as an array.
    **overrides
        Any :class:`AlignConfig` field, replacing the one in ``config`` (``grid="whisper"``, ``max_players=4``).

    Raises
    ------
    InputError
        Unusable audio, transcript or setting (see :mod:`sgpa.audio`, :mod:`sgpa.text`,
        :meth:`AlignConfig.validate`), or audio too short for its transcript.
    """
    segmentation, _ = align_timed(audio, transcript, acoustic_model, config, sample_rate=sample_rate, **overrides)
    return segmentation


def _timed_word(entry: Any, position: int) -> tuple[str, float, float]:
    if isinstance(entry, dict):
        text = entry.get("word", entry.get("text"))
        start, end = entry.get("start"), entry.get("end")
    else:
        try:
            text, start, end = entry
        except (TypeError, ValueError):
            raise InputError(f"word {position}: expected (text, start_s, end_s) or a dict, got {entry!r}") from None
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"word {position}: no text")
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise InputError(f"word {position} ({text!r}): start and end must be numbers, got {start!r}, {end!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
        raise InputError(f"word {position} ({text!r}): needs 0 <= start < end, got {start} and {end}")
    return text.strip(), start, end


def segmentation_from_word_times(
    audio: str | Path | np.ndarray,
    words: list[Any],
    *,
    sample_rate: int | None = None,
    grid: str | float = "lfm2-audio",
    token_offset_s: float = 0.0,
    min_word_duration_s: float = 0.0,
    source: str = "external",
    time_resolution_s: float = 0.01,
    max_duration_s: float | None = MAX_DURATION_S,
) -> Segmentation:
    """A :class:`Segmentation` from word times found elsewhere (MFA, WhisperX, a hand-labelled TextGrid).

    Stage 1 and 2 are skipped: the given times are the words' raw spans (``ctc_start``/``ctc_end``); stage 3 tiles
    them as it tiles CTC spans (a gap between two words is cut at its midpoint; the non-speech before the first and
    after the last word is context), and stage 4 maps them onto ``grid``.

    Parameters
    ----------
    audio
        The audio file, or a waveform ``[n_samples]`` at ``sample_rate`` Hz (default 16 kHz).
    words
        In spoken order: ``(text, start_s, end_s)`` tuples, or dicts with ``word`` (or ``text``), ``start``, ``end``.
    grid, token_offset_s
        Stage 4's token grid (see :class:`AlignConfig`).
    min_word_duration_s
        Shortest word after tiling (0: keep the given extents).
    source
        Recorded as the segmentation's model id (``"mfa"``, ``"whisperx"``, ...).
    time_resolution_s
        The resolution of the given times, recorded as the model's frame duration (MFA: 10 ms).

    Raises
    ------
    InputError
        No words, a word without text, times that are not numbers, not increasing, overlapping or past the audio.
    """
    _, info = _waveform_and_info(audio, SAMPLE_RATE, sample_rate, max_duration_s)
    timed = [_timed_word(entry, position) for position, entry in enumerate(words)]
    if not timed:
        raise InputError("no words: nothing to segment")
    for position, ((_, _, end), (text, start, _)) in enumerate(zip(timed, timed[1:]), start=1):
        if start < end - 1e-6:
            raise InputError(f"word {position} ({text!r}) starts at {start} s, before the previous word ends ({end} s)")
    if timed[-1][2] > info.duration_s + time_resolution_s:
        raise InputError(f"the last word ends at {timed[-1][2]} s, after the audio ({info.duration_s:.3f} s)")
    spec = resolve_grid(grid, token_offset_s)
    starts = np.array([start for _, start, _ in timed])
    ends = np.minimum([end for _, _, end in timed], info.duration_s)
    cuts = np.concatenate([[starts[0]], (ends[:-1] + starts[1:]) / 2, [ends[-1]]])
    cuts = enforce_min_duration(cuts, min_word_duration_s, info.duration_s)
    spoken = [expand_word(text) for text, _, _ in timed]
    normalized = [NormalizedWord(text, said, normalized=said, n_unspellable=0) for (text, _, _), said in zip(timed, spoken, strict=True)]
    raw = [RawWordSpan(float(start), float(end), confidence=1.0) for start, end in zip(starts, ends, strict=True)]
    not_refined = np.zeros(len(timed) + 1, dtype=bool)
    segments = build_word_segments(normalized, raw, cuts, not_refined)
    context = context_spans(segments, info.duration_s)
    token_grid = map_to_tokens(segments, context, info.duration_s, spec)
    return Segmentation(
        audio=info,
        transcript=TranscriptInfo(raw=" ".join(text for text, _, _ in timed), normalized=" ".join(spoken)),
        model=ModelInfo(id=source, revision=None, frame_duration_s=time_resolution_s),
        parameters={
            "source": source,
            "min_word_duration_s": min_word_duration_s,
            "grid": spec.name,
            "token_duration_s": spec.token_duration_s,
            "token_offset_s": spec.offset_s,
        },
        words=segments,
        context=context,
        grid=token_grid,
        quality=Quality(
            n_boundaries=0,
            refinement_fallback_rate=0.0,
            mean_confidence=1.0,
            min_confidence=1.0,
            n_interpolated_words=0,
            straddling_tokens=token_grid.straddling_tokens,
        ),
    )
