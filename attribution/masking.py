"""Maskers: how an absent word is removed from the model's input.

Two families, both pure functions over arrays:

* **embedding masking** (:func:`mask_token_embeddings`): the audio encoder runs once; the encoder-output
  embeddings of the tokens a word owns (stage 4's token grid) are replaced by a baseline vector — zeros by
  default, or the mean audio embedding of the utterance. Tokens owned by context (``owner == -1``) and by
  present words are untouched.
* **waveform masking** (:func:`mask_waveform`): the samples of an absent word are replaced by digital
  silence (``"silence"``), by Gaussian noise at the utterance's noise floor drawn once per word
  (``"noise"``, :func:`noise_track`), or cut out and the rest concatenated (``"deletion"``; the audio gets
  shorter, so the encoder's token grid changes). The masked audio is re-encoded for every coalition.

Either way a coalition's input differs from another's only where their players differ; a player whose masking
changes nothing (:func:`null_players`) is known to be null, and the game never spends an evaluation on it.

Leading/trailing context and pauses between words are never removed: a pause is not a player, and deleting
it from every coalition would bias every value.
"""

from __future__ import annotations

import numpy as np

from sgpa.segmentation import Segmentation

WAVEFORM_MASKINGS = ("silence", "noise", "deletion")
EMBEDDING_BASELINES = ("zero", "mean")


def word_sample_spans(segmentation: Segmentation, sample_rate: int, n_samples: int) -> np.ndarray:
    """Sample spans ``[start, end)`` of the words, clipped to the audio; int64 array of shape ``(n_words, 2)``."""
    spans = np.array(
        [[round(w.start * sample_rate), round(w.end * sample_rate)] for w in segmentation.words], dtype=np.int64
    ).reshape(-1, 2)
    return np.clip(spans, 0, n_samples)


def frame_owner(segmentation: Segmentation, centres_s: np.ndarray) -> np.ndarray:
    """The word owning each frame of a model's front end: the word whose span holds the frame's centre time, or
    ``-1`` (context). ``centres_s``: ``(n_frames,)`` seconds; returns int64 ``(n_frames,)``."""
    owner = np.full(len(centres_s), -1, dtype=np.int64)
    for index, word in enumerate(segmentation.words):
        owner[(centres_s >= word.start) & (centres_s < word.end)] = index
    return owner


def token_owner(segmentation: Segmentation, n_tokens: int) -> np.ndarray:
    """Owner of each of the model's ``n_tokens`` audio tokens: a word index, or ``-1`` for context.

    The encoder may produce a token or two more than the segmentation's grid (its last frame covers padding
    past the end of the audio); those extra tokens are context. Shape ``(n_tokens,)``, int64.
    """
    owner = np.full(n_tokens, -1, dtype=np.int64)
    grid_owner = np.asarray(segmentation.grid.owner, dtype=np.int64)[:n_tokens]
    owner[: len(grid_owner)] = grid_owner
    return owner


def token_keep_mask(coalitions: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Which audio tokens stay unmasked in each coalition.

    Parameters
    ----------
    coalitions : bool ``(k, n_words)``, True = word present.
    owner : int ``(n_tokens,)``, word index or ``-1`` (context, always kept).

    Returns
    -------
    bool ``(k, n_tokens)``.
    """
    coalitions = np.asarray(coalitions, dtype=bool)
    keep = np.ones((coalitions.shape[0], owner.shape[0]), dtype=bool)
    is_word = owner >= 0
    keep[:, is_word] = coalitions[:, owner[is_word]]
    return keep


def mask_token_embeddings(embeddings, keep, baseline):
    """Replace the embeddings of masked tokens by ``baseline``.

    Parameters
    ----------
    embeddings : torch.Tensor ``(n_tokens, dim)``, the unmasked audio embeddings.
    keep : bool ``(k, n_tokens)`` (numpy or torch), from :func:`token_keep_mask`.
    baseline : torch.Tensor ``(dim,)``.

    Returns
    -------
    torch.Tensor ``(k, n_tokens, dim)``; rows where ``keep`` is True are exact copies of ``embeddings``.
    """
    import torch

    keep_t = torch.as_tensor(np.asarray(keep), device=embeddings.device)[..., None]
    return torch.where(keep_t, embeddings[None], baseline.to(embeddings.dtype)[None, None])


def embedding_baseline(embeddings, kind: str):
    """The replacement vector for a masked audio token: zeros, or the mean audio embedding of the utterance."""
    import torch

    if kind == "zero":
        return torch.zeros(embeddings.shape[-1], dtype=embeddings.dtype, device=embeddings.device)
    if kind == "mean":
        return embeddings.mean(dim=0)
    raise ValueError(f"unknown embedding baseline {kind!r}; expected one of {EMBEDDING_BASELINES}")


def noise_floor_rms(audio: np.ndarray, sample_rate: int, percentile: float = 10.0) -> float:
    """The utterance's noise floor: the ``percentile``-th percentile of 25 ms frame RMS (10 ms hop)."""
    from sgpa.audio import frame_rms

    rms = frame_rms(audio, frame_length=int(0.025 * sample_rate), hop_length=int(0.010 * sample_rate), center=False)
    return float(np.percentile(rms, percentile))


def noise_track(spans: np.ndarray, n_samples: int, noise_rms: float, seed: int) -> np.ndarray:
    """The noise that replaces each word under ``"noise"`` masking, drawn once per word.

    Word ``i``'s noise comes from a generator seeded by ``(seed, i)`` alone, so a coalition's input differs from
    another's only in the words where the two coalitions differ. (Noise drawn per *coalition* would differ
    everywhere between any two coalitions, and a player with no audio would receive a non-zero value: the null
    player axiom would fail.)

    Parameters
    ----------
    spans : int ``(n_words, 2)`` sample spans from :func:`word_sample_spans` (non-overlapping).
    n_samples : length of the audio.
    noise_rms : standard deviation of the Gaussian noise (see :func:`noise_floor_rms`).
    seed : the explanation's seed.

    Returns
    -------
    float32 ``(n_samples,)``: each word's noise on its own span, zeros elsewhere.
    """
    track = np.zeros(n_samples, dtype=np.float32)
    for index, (start, end) in enumerate(spans):
        if end > start:
            noise = np.random.default_rng([seed, index]).standard_normal(end - start) * noise_rms
            track[start:end] = noise.astype(np.float32)
    return track


def absent_samples(spans: np.ndarray, present: np.ndarray, n_samples: int) -> np.ndarray:
    """bool ``(n_samples,)``: the samples of the words absent from a coalition (``present``: bool ``(n_words,)``)."""
    absent = np.zeros(n_samples, dtype=bool)
    for (start, end), is_present in zip(spans, np.asarray(present, dtype=bool), strict=True):
        if not is_present:
            absent[start:end] = True
    return absent


def mask_waveform(
    audio: np.ndarray,
    spans: np.ndarray,
    present: np.ndarray,
    masking: str,
    *,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """The audio of one coalition: absent words silenced, replaced by their noise, or deleted.

    Parameters
    ----------
    audio : float ``(n_samples,)``.
    spans : int ``(n_words, 2)`` sample spans ``[start, end)`` from :func:`word_sample_spans`.
    present : bool ``(n_words,)``.
    masking : ``"silence"``, ``"noise"`` or ``"deletion"``.
    noise : for ``"noise"``, the utterance's :func:`noise_track` (the same for every coalition).

    Returns
    -------
    float32 array: ``(n_samples,)`` for silence and noise, shorter for deletion.
    """
    if masking not in WAVEFORM_MASKINGS:
        raise ValueError(f"unknown waveform masking {masking!r}; expected one of {WAVEFORM_MASKINGS}")
    absent = absent_samples(spans, present, len(audio))
    if masking == "deletion":
        return np.asarray(audio[~absent], dtype=np.float32)
    masked = np.array(audio, dtype=np.float32, copy=True)
    if masking == "silence":
        masked[absent] = 0.0
    else:
        if noise is None:
            raise ValueError("noise masking needs the utterance's noise track (see noise_track)")
        masked[absent] = noise[absent]
    return masked


def null_players(spans: np.ndarray, owner: np.ndarray | None = None, n_players: int | None = None) -> np.ndarray:
    """bool ``(n_players,)``: players whose masking changes nothing, so their Shapley value is exactly zero.

    A word is null when its sample span is empty (waveform maskings) or, with ``owner`` (embedding maskings: the
    word index owning each token or frame, ``-1`` for context), when it owns no token. Players beyond the words
    (``n_players`` > number of spans) are not judged here and count as not null.
    """
    n_words = len(spans)
    if owner is None:
        null = np.asarray(spans)[:, 1] <= np.asarray(spans)[:, 0]
    else:
        null = ~np.isin(np.arange(n_words), np.asarray(owner))
    if n_players is not None and n_players > n_words:
        null = np.concatenate([null, np.zeros(n_players - n_words, dtype=bool)])
    return null
