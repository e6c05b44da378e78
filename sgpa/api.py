"""The notebook API: align, explain and plot in two or three calls.

    import sgpa
    seg = sgpa.align("clip.wav", "the old man found a small red box")   # the shipped model, loaded once
    exp = sgpa.explain("clip.wav", seg)                                   # the shipped CTC recogniser
    exp.plot()                                                            # a matplotlib Figure

Models are loaded on first use and kept, keyed by what was asked for, so the second file costs no loading:
:func:`load_aligner` and :func:`load_backend` return the same object for the same arguments (``clear_cache`` drops
them). The command line (``sgpa align`` / ``sgpa explain``) and the service are thin layers over these functions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from sgpa.errors import InputError
from sgpa.pipeline import SAMPLE_RATE, AlignConfig
from sgpa.segmentation import Segmentation

AudioInput = str | Path | np.ndarray


@functools.lru_cache(maxsize=4)
def _cached_aligner(model: str | None, device: str) -> Any:
    from transformers.utils import logging as transformers_logging

    from sgpa.ctc import load_ctc_model

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    return load_ctc_model(model, device=device)


def load_aligner(model: str | Path | None = None, device: str = "cpu") -> Any:
    """The CTC acoustic model of stage 1 (:class:`sgpa.ctc.AcousticModel`), loaded once per ``(model, device)``.

    ``model``: a hub id (``"facebook/wav2vec2-base-960h"``) or a local folder; ``None`` = the shipped sgpa-ctc-en.
    """
    return _cached_aligner(None if model is None else str(model), device)


@functools.lru_cache(maxsize=4)
def _cached_backend(model: str | None, backend: str, device: str, dtype: str, max_new_tokens: int) -> Any:
    from sgpa.attribution.models import load_backend as load

    acoustic_model = _cached_aligner(model, device) if backend == "ctc" else None
    return load(model, backend, device=device, dtype=dtype, max_new_tokens=max_new_tokens,
                acoustic_model=acoustic_model)


def load_backend(
    model: str | Path | None = None,
    backend: str | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    max_new_tokens: int = 32,
) -> Any:
    """A model to explain (:class:`sgpa.attribution.models.base.Backend`), loaded once per set of arguments.

    ``model`` is a hub id or a local folder (``None``: the backend's shipped model, the CTC recogniser or, for
    ``"lfm2-audio"``, the oracle ``sgpa-lfm2-oracle``); ``backend`` (``"ctc"``, ``"lfm2-audio"``) is detected from
    it when ``None``. The ``ctc`` backend shares the aligner's loaded model.
    See :func:`sgpa.attribution.models.load_backend` for the other parameters.
    """
    from sgpa.attribution.models import detect_backend

    backend = backend or detect_backend(model)
    return _cached_backend(None if model is None else str(model), backend, device, dtype, int(max_new_tokens))


def clear_cache() -> None:
    """Forget every model :func:`load_aligner` and :func:`load_backend` kept (to free memory)."""
    _cached_aligner.cache_clear()
    _cached_backend.cache_clear()


def align(
    audio: AudioInput,
    transcript: str,
    *,
    model: str | Path | None = None,
    aligner: Any = None,
    config: AlignConfig | None = None,
    sample_rate: int | None = None,
    device: str = "cpu",
    **settings: Any,
) -> Segmentation:
    """Align ``transcript`` to ``audio`` and map its words onto a target model's token grid (the four SGPA stages).

    Parameters
    ----------
    audio
        An audio file (anything libsndfile reads), or a waveform ``[n_samples]`` at ``sample_rate`` Hz.
    transcript
        What is said, as free text; numerals and symbols are spelled out, and every word stays one player.
    model, device
        The CTC model for stage 1 (hub id or folder; ``None``: the shipped sgpa-ctc-en), loaded once and kept.
    aligner
        An already loaded model from :func:`load_aligner` (overrides ``model``).
    config
        Stage settings (:class:`sgpa.AlignConfig`); ``**settings`` override single fields (``grid="whisper"``).

    Returns
    -------
    Segmentation
        Words with times and token spans, context spans, the token grid and quality figures; ``.plot()``,
        ``.to_textgrid(path)``, ``.save(path)``.
    """
    from sgpa.pipeline import align as run_pipeline

    acoustic_model = aligner if aligner is not None else load_aligner(model, device)
    return run_pipeline(audio, transcript, acoustic_model, config, sample_rate=sample_rate, **settings)


def read_waveform(audio: AudioInput, sample_rate: int | None = None) -> tuple[np.ndarray, Any]:
    """A file or a waveform (``[n_samples]`` or ``[n_samples, n_channels]`` at ``sample_rate``) as float32 mono at
    16 kHz, validated, with its :class:`~sgpa.segmentation.AudioInfo`."""
    from sgpa.audio import load_audio, resample, validate_waveform, waveform_info

    if isinstance(audio, np.ndarray):
        waveform = np.asarray(audio, dtype=np.float32)
        waveform = waveform.mean(axis=1) if waveform.ndim == 2 else waveform
        validate_waveform(waveform, sample_rate or SAMPLE_RATE, max_duration_s=None)
        waveform = resample(waveform, sample_rate or SAMPLE_RATE, SAMPLE_RATE)
        return waveform, waveform_info(waveform, SAMPLE_RATE)
    return load_audio(audio, sample_rate=SAMPLE_RATE)


def explain(
    audio: AudioInput,
    segments: Segmentation | str | Path,
    *,
    model: str | Path | None = None,
    backend: Any = None,
    prompt: str | None = None,
    masking: str | None = None,
    normalization: str | None = None,
    estimator: str = "auto",
    budget: int | None = None,
    tolerance: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    text_players: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    max_new_tokens: int = 32,
    aligner: Any = None,
    align_config: AlignConfig | None = None,
    sample_rate: int | None = None,
    progress: bool = False,
    on_progress: Any = None,
) -> Any:
    """Word-level Shapley values of a model's answer about ``audio``.

    Parameters
    ----------
    audio
        The audio file, or a waveform ``[n_samples]`` at ``sample_rate`` Hz.
    segments
        The players: a :class:`Segmentation` (from :func:`align`), a ``Path`` to a segments JSON written by
        ``sgpa align``, or the transcript as a ``str`` (aligned first, onto the backend's token grid). A
        segmentation must describe this very audio (same sha256 and duration).
    model, backend
        What to explain: a hub id or local folder and its backend name (detected when ``None``), or a loaded
        backend from :func:`load_backend` as ``backend``. Default: the shipped CTC recogniser, whose value is
        ``log P(transcript word | masked audio)``; with ``backend="lfm2-audio"`` and no model, the shipped oracle
        LFM2-Audio model ``sgpa-lfm2-oracle`` (value: ``log P(answer token | prompt, masked audio)``).
    prompt
        The instruction for a chat model (LFM2-Audio; default ``"Perform ASR."``).
    masking
        How an absent word is removed: ``embedding``, ``embedding-mean``, ``silence``, ``noise``, ``deletion``
        (default: the backend's).
    normalization
        Waveform maskings: ``"frozen"`` (default; every coalition normalised with the full utterance's statistics)
        or ``"per-input"`` (the model's front end normalises each masked input anew).
    estimator, budget, tolerance, seed
        ``auto`` (exact when 2^n fits the budget), ``exact``, ``permutation``, ``kernel``, ``loo``, ``banzhaf``; the
        most model evaluations; stop a sampled estimator when every standard error is below ``tolerance``.
    batch_size
        Coalitions per model call (default: chosen from memory).
    text_players
        The prompt's words are players too (joint audio + text game; the result reports the audio share A-SHAP).
    device, dtype, max_new_tokens
        Where and how a model given by name is loaded (see :func:`load_backend`).
    aligner, align_config
        The CTC model and settings used when ``segments`` is a transcript (default: the shipped model).
    progress
        Show a progress bar over the model evaluations.
    on_progress
        ``on_progress(done, planned)`` after every model call: evaluations so far and the estimator's plan (``None``
        when unknown). An exception it raises stops the explanation.

    Returns
    -------
    Explanation
        ``phi`` (players x response tokens), ``phi_total`` per word, ``stderr`` (``None`` where exact), ``players``,
        ``v_empty``/``v_full``, the efficiency gap, the cost in model evaluations; ``.plot()``, ``.to_shap()``,
        ``.save(path)``.
    """
    from sgpa.attribution.explanation import explain as run_explanation
    from sgpa.attribution.models import BACKEND_GRIDS

    if budget is not None and budget < 2:
        raise InputError(f"budget {budget} is too small: an explanation needs at least the empty and full coalition")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
    from sgpa.attribution.estimators import check_options

    check_options(estimator, tolerance, seed)  # before any model loads
    waveform, audio_info = read_waveform(audio, sample_rate)
    segmentation = None
    if isinstance(segments, Segmentation):
        segmentation = segments
        segmentation.check_audio(audio_info, source="the segmentation")
    elif isinstance(segments, Path):
        segmentation = Segmentation.load(segments)
        segmentation.check_audio(audio_info, source=str(segments))
    elif not isinstance(segments, str):
        raise InputError(f"segments must be a Segmentation, a Path to a segments JSON or a transcript, not {type(segments).__name__}")

    if backend is None or isinstance(backend, str):
        explainer = load_backend(model, backend, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
    else:
        explainer = backend
    if segmentation is None:
        if aligner is None and explainer.name == "ctc" and model is not None:
            aligner = explainer.acoustic_model  # explaining a CTC model: align with the same model
        config = (align_config or AlignConfig()).with_overrides(grid=BACKEND_GRIDS[explainer.name])
        segmentation = align(waveform, segments, aligner=aligner, config=config, sample_rate=SAMPLE_RATE,
                             device=device)
        segmentation.audio = audio_info

    explanation = run_explanation(
        explainer, waveform, segmentation, prompt=prompt, masking=masking, method=estimator, budget=budget,
        tolerance=tolerance, seed=seed, batch_size=batch_size, progress=progress, text_players=text_players,
        normalization=normalization, on_progress=on_progress,
    )
    is_chat_model = explainer.name != "ctc"
    explanation.parameters.update({
        "max_new_tokens": max_new_tokens if is_chat_model else None,
        "device": device,
        "dtype": dtype if is_chat_model else None,
        "segments": str(segments) if isinstance(segments, Path) else None,
    })
    return explanation
