"""The SGPA pipeline: audio + transcript → word segments on a target model's token grid.

``align`` runs the four stages in order on plain data:

1. :mod:`sgpa.ctc` — emissions and forced alignment → character spans
2. :mod:`sgpa.refine` — cuts between words moved to real energy dips
3. :mod:`sgpa.merge` — words tiling the speech region, context spans, optional phrase cap
4. :mod:`sgpa.tokens` — every token of the target grid owned by one word or by context
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sgpa.audio import MAX_DURATION_S, load_audio, resample, validate_waveform, waveform_info
from sgpa.ctc import (
    AcousticModel,
    align_characters,
    compute_emissions,
    label_sequence,
    min_frames_needed,
    restrict_to_frames,
)
from sgpa.errors import InputError
from sgpa.merge import (
    build_word_segments,
    context_spans,
    enforce_min_duration,
    delimiter_times_s,
    merge_into_phrases,
    raw_word_spans,
)
from sgpa.refine import RefinementParameters, refine_boundaries, speech_extent_s
from sgpa.segmentation import ModelInfo, Quality, Segmentation, TranscriptInfo
from sgpa.text import normalize_transcript
from sgpa.tokens import GridSpec, map_to_tokens, resolve_grid

#: Shortest word segment after tiling (seconds): one CTC frame is not a word.
MIN_WORD_DURATION_S = 0.05

#: Where a cut between two words starts from: the word delimiter's centre, or the characters' gap midpoint;
#: ``auto`` takes the delimiter for models trained to put it in the gap (``AcousticModel.delimiter_marks_gaps``).
INTERIOR_CUTS = ("auto", "delimiter", "midpoint")


def gate_to_speech(
    log_probs: np.ndarray, label_ids: np.ndarray, waveform: np.ndarray, sample_rate: int, acoustic_model: AcousticModel
) -> np.ndarray:
    """Only blanks before the energy onset and after the energy offset of the speech (see ``speech_extent_s``).

    Left as it is when the speech region would be too short to spell the transcript.
    """
    onset_s, offset_s = speech_extent_s(waveform, sample_rate)
    frame_s = acoustic_model.frame_duration_s
    first, end = int(onset_s / frame_s), min(log_probs.shape[0], int(np.ceil(offset_s / frame_s)))
    if end - first < min_frames_needed(label_ids):
        return log_probs
    return restrict_to_frames(log_probs, acoustic_model.blank_id, first, end)


def align_timed(
    audio: str | Path | np.ndarray,
    transcript: str,
    acoustic_model: AcousticModel,
    grid: str | float | GridSpec = "lfm2-audio",
    *,
    sample_rate: int | None = None,
    token_offset_s: float = 0.0,
    padding_s: float = RefinementParameters.padding_s,
    alpha: float = RefinementParameters.alpha,
    accept_ratio: float = RefinementParameters.accept_ratio,
    edge_padding_s: float = RefinementParameters.edge_padding_s,
    offset_extension_s: float = RefinementParameters.offset_extension_s,
    refine_interior: bool = RefinementParameters.refine_interior,
    min_word_duration_s: float = MIN_WORD_DURATION_S,
    max_players: int | None = None,
    max_duration_s: float | None = MAX_DURATION_S,
    speech_gate: bool = True,
    interior_cut: str = "auto",
) -> tuple[Segmentation, dict[str, float]]:
    """:func:`align`, also returning wall-clock seconds per step.

    The timings dict has ``load_audio_s``, ``forward_s`` (the model's emissions), ``stage1_s``
    (normalisation + forced alignment), ``stage2_s``, ``stage3_s`` and ``stage4_s``.
    """
    if interior_cut not in INTERIOR_CUTS:
        raise InputError(f"interior_cut must be one of {', '.join(INTERIOR_CUTS)}, not {interior_cut!r}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    rate = acoustic_model.sample_rate
    if isinstance(audio, np.ndarray):
        given_rate = sample_rate or rate
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim == 2:
            waveform = waveform.mean(axis=1)
        validate_waveform(waveform, given_rate, max_duration_s=max_duration_s)
        waveform = resample(waveform, given_rate, rate)
        info = waveform_info(waveform, rate)
    else:
        waveform, info = load_audio(audio, sample_rate=rate, max_duration_s=max_duration_s)
    spec = resolve_grid(grid, token_offset_s)
    refinement = RefinementParameters(
        padding_s=padding_s,
        alpha=alpha,
        accept_ratio=accept_ratio,
        edge_padding_s=edge_padding_s,
        offset_extension_s=offset_extension_s,
        refine_interior=refine_interior,
    )
    words = normalize_transcript(transcript, acoustic_model.characters)
    now = time.perf_counter()
    timings["load_audio_s"], clock = now - clock, now

    log_probs = compute_emissions(acoustic_model, waveform)
    now = time.perf_counter()
    timings["forward_s"], clock = now - clock, now

    label_ids, word_index = label_sequence(words, acoustic_model)
    if speech_gate:
        log_probs = gate_to_speech(log_probs, label_ids, waveform, rate, acoustic_model)
    characters = align_characters(
        log_probs, label_ids, word_index, acoustic_model.blank_id, acoustic_model.frame_duration_s
    )
    raw = raw_word_spans(characters, len(words), info.duration_s)
    if interior_cut == "auto":
        interior_cut = "delimiter" if acoustic_model.delimiter_marks_gaps else "midpoint"
    anchors = delimiter_times_s(characters, len(words)) if interior_cut == "delimiter" else None
    now = time.perf_counter()
    timings["stage1_s"], clock = now - clock, now

    interpolated = [span.interpolated for span in raw]
    cuts, refined = refine_boundaries(
        waveform, rate, [(span.start_s, span.end_s) for span in raw], refinement, fixed=interpolated, anchors_s=anchors
    )
    # Cuts between two spelled words; with refine_interior off they all stay at stage 1's cut (counted as fallbacks).
    attempted = [
        not (interpolated[index - 1] or interpolated[index]) for index in range(1, len(words))
    ]
    n_attempted = sum(attempted)
    n_fallbacks = sum(1 for index, tried in enumerate(attempted, start=1) if tried and not refined[index])
    now = time.perf_counter()
    timings["stage2_s"], clock = now - clock, now

    cuts = enforce_min_duration(cuts, min_word_duration_s, info.duration_s)
    segments = build_word_segments(words, raw, cuts, refined)
    if max_players is not None:
        segments = merge_into_phrases(segments, max_players)
    context = context_spans(segments, info.duration_s)
    now = time.perf_counter()
    timings["stage3_s"], clock = now - clock, now

    token_grid = map_to_tokens(segments, context, info.duration_s, spec)
    timings["stage4_s"] = time.perf_counter() - clock

    confidences = [segment.confidence for segment in segments]
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
            "min_word_duration_s": min_word_duration_s,
            "max_players": max_players,
            "speech_gate": speech_gate,
            "interior_cut": interior_cut,
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
        ),
    )
    return segmentation, timings


def align(
    audio: str | Path | np.ndarray,
    transcript: str,
    acoustic_model: AcousticModel,
    grid: str | float | GridSpec = "lfm2-audio",
    **parameters,
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
    grid
        ``"lfm2-audio"`` (80 ms tokens), ``"whisper"``/``"wav2vec2"`` (20 ms), a custom token
        duration in seconds, or a :class:`~sgpa.tokens.GridSpec`.
    **parameters
        ``sample_rate``, ``token_offset_s``, ``padding_s`` (0.01), ``alpha`` (0.5),
        ``accept_ratio``, ``edge_padding_s``, ``min_word_duration_s`` (0.05), ``max_players``
        (cap on words; adjacent words merge into phrases), ``max_duration_s``, ``interior_cut`` (``"delimiter"``:
        a cut between words is the centre of the CTC word delimiter between them, where the model emits one;
        ``"midpoint"``: the midpoint of the gap between the two words' characters; ``"auto"``, the default: the
        delimiter for models trained to emit it in the gap, like the shipped one, else the midpoint — with a
        plain-CTC model the delimiter measured worse), ``refine_interior`` (False:
        cuts between words stay where ``interior_cut`` puts them, see :class:`~sgpa.refine.RefinementParameters`),
        ``speech_gate`` (True: no label before the energy onset or after the offset of the speech).

    Raises
    ------
    InputError
        Unusable audio or transcript (see :mod:`sgpa.audio`, :mod:`sgpa.text`), or audio too short
        for its transcript.
    """
    segmentation, _ = align_timed(audio, transcript, acoustic_model, grid, **parameters)
    return segmentation
