"""What the transformers audio models share: Whisper's log-mel front end over a 30 s window, and scoring helpers.

Whisper, Qwen2-Audio and Voxtral all read audio through ``WhisperFeatureExtractor``: an STFT (25 ms window, 10 ms
hop) → mel filterbank → ``log10`` → a floor 8 (log10) units below the input's loudest bin → ``(x + 4) / 4``, over
exactly 30 s (the audio is zero-padded; 3,000 frames). The floor is the front end's only per-input statistic, so
"frozen" normalisation (:data:`sgpa.attribution.models.base.NORMALIZATIONS`) takes it from the full utterance for
every coalition: silencing a loud word then leaves the other words' features exactly as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sgpa.errors import InputError

SAMPLE_RATE = 16000
#: The front end's window: every input is padded (or must be cut) to this many seconds.
WINDOW_S = 30.0


def check_window(n_samples: int, model_name: str) -> None:
    """``InputError`` for audio longer than the 30 s window (chunked explanation is not supported)."""
    duration_s = n_samples / SAMPLE_RATE
    if duration_s > WINDOW_S:
        raise InputError(
            f"{model_name} reads at most {WINDOW_S:g} s of audio in one window and this audio is {duration_s:.1f} s: "
            "cut it into shorter utterances (chunked explanations are not supported)"
        )


def log_mel(feature_extractor: Any, waves: np.ndarray, log_max: Any = None, device: Any = "cpu") -> tuple[Any, Any]:
    """Whisper log-mel features of a batch, ``(k, n_samples)`` → ``(k, n_mels, 3000)``, padded to 30 s.

    Reproduces ``WhisperFeatureExtractor``'s torch path; ``log_max`` (the ``(k,)`` or scalar loudest log10 bin of
    the full utterance) freezes the floor instead of taking it from each input. Returns the features and each
    row's own loudest log10 bin ``(k,)``.
    """
    import torch

    n_window = int(feature_extractor.n_samples)
    waves = np.asarray(waves, dtype=np.float32)
    padded = np.zeros((waves.shape[0], n_window), dtype=np.float32)
    padded[:, : min(waves.shape[1], n_window)] = waves[:, :n_window]
    wave_t = torch.from_numpy(padded).to(device)
    window = torch.hann_window(feature_extractor.n_fft, device=device)
    stft = torch.stft(wave_t, feature_extractor.n_fft, feature_extractor.hop_length, window=window,
                      return_complex=True)
    power = (stft[..., :-1].abs() ** 2).contiguous()
    mel_filters = torch.from_numpy(np.asarray(feature_extractor.mel_filters, dtype=np.float32)).to(device)
    log_spec = torch.clamp(mel_filters.T @ power, min=1e-10).log10()
    own_max = log_spec.amax(dim=(1, 2))
    reference = own_max if log_max is None else torch.as_tensor(log_max, dtype=log_spec.dtype, device=device)
    log_spec = torch.maximum(log_spec, (reference - 8.0).reshape(-1, 1, 1))
    return (log_spec + 4.0) / 4.0, own_max


def token_log_probs(logits: Any, token_ids: list[int]) -> np.ndarray:
    """``log softmax(logits)`` at ``token_ids``: logits ``(k, T, vocab)`` → float64 ``(k, T)`` (taken in float32)."""
    import torch

    with torch.no_grad():
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        ids = torch.tensor(token_ids, dtype=torch.long, device=logits.device)
        picked = log_probs.gather(-1, ids.expand(logits.shape[0], -1)[..., None])[..., 0]
    return picked.double().cpu().numpy()


def stop_token_ids(generation_config: Any, tokenizer: Any) -> set[int]:
    """The ids that end a greedy response: the generation config's ``eos_token_id`` (one or several) and the
    tokenizer's end-of-sequence token."""
    stop = generation_config.eos_token_id if generation_config is not None else None
    ids = set(stop if isinstance(stop, (list, tuple)) else [] if stop is None else [stop])
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    return {int(i) for i in ids}


def checked_utterance(audio: np.ndarray, segmentation: Any, token_duration_s: float, grid_name: str) -> np.ndarray:
    """``audio`` as float32 once it fits the 30 s window and ``segmentation`` (with words) is on the model's grid;
    ``InputError`` otherwise."""
    audio = np.asarray(audio, dtype=np.float32)
    check_window(len(audio), grid_name)
    check_grid_duration(segmentation, token_duration_s, grid_name)
    if segmentation.n_words == 0:
        raise InputError("the segmentation has no words: nothing to explain")
    return audio


def frozen_log_max(feature_extractor: Any, audio: np.ndarray, normalization: str, device: Any = "cpu") -> Any:
    """The full utterance's loudest log10 bin, the floor every coalition shares under ``"frozen"`` normalisation;
    ``None`` under ``"per-input"`` (each input finds its own)."""
    if normalization != "frozen":
        return None
    _, full_max = log_mel(feature_extractor, np.asarray(audio, dtype=np.float32)[None], device=device)
    return full_max


def check_grid_duration(segmentation: Any, token_duration_s: float, grid_name: str) -> None:
    """The segmentation must be mapped to the model's grid (``token_duration_s`` per audio position, from 0)."""
    grid = segmentation.grid
    if abs(grid.token_duration_s - token_duration_s) > 1e-9 or abs(grid.offset_s) > 1e-9:
        raise InputError(
            f"the segmentation was mapped to grid {grid.name!r} ({grid.token_duration_s * 1000:g} ms tokens, "
            f"offset {grid.offset_s:g} s), not this model's {token_duration_s * 1000:g} ms grid: run "
            f"`sgpa align --grid {grid_name}`"
        )
