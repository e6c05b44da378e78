"""The one interface every model backend implements.

A backend wraps a loaded model that answers a text prompt about audio (LFM2-Audio) or transcribes it
(a CTC recogniser). It is loaded once; :meth:`Backend.prepare` encodes one utterance once, generates the
reference response on the full input and returns a :class:`PreparedGame`, whose :meth:`PreparedGame.log_probs`
is the value function of the Shapley game: for each coalition of present words, the teacher-forced
log-probability of every reference-response token with the absent words masked.

The players are the words of a :class:`sgpa.segmentation.Segmentation`; their times (``start``/``end``,
seconds) drive waveform masking and their token spans (``grid.owner``) drive embedding masking.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sgpa.errors import InputError
from sgpa.segmentation import Segmentation


@dataclass
class Response:
    """The reference response the game scores, one entry per scored token.

    ``token_ids`` are the model's ids (text tokens for LFM2-Audio; for the CTC backend, one "token" per word
    of the transcript and ids are ``-1``). ``tokens`` are their readable forms.
    """

    text: str
    token_ids: list[int]
    tokens: list[str]

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


@dataclass
class PreparedGame(ABC):
    """One utterance, encoded, with its reference response: the value function of the game.

    Attributes
    ----------
    response : the reference response (``T`` scored tokens).
    player_names : one readable name per player (``n`` players).
    masking : the masking strategy in use.
    batch_size : how many coalitions one model call scores (chosen from memory).
    details : backend-specific facts worth recording in the explanation (prompt, token counts, ...).
    null_players : one flag per player: True where masking the player changes nothing in the model's input (a word
        with an empty span, or with no token under embedding masking); the game gives it exactly zero.
    """

    response: Response
    player_names: list[str]
    masking: str
    batch_size: int
    details: dict[str, Any] = field(default_factory=dict)
    null_players: np.ndarray | None = None

    @property
    def n_players(self) -> int:
        return len(self.player_names)

    @abstractmethod
    def log_probs(self, coalitions: np.ndarray) -> np.ndarray:
        """Teacher-forced log-probabilities of the reference response under masked input.

        Parameters
        ----------
        coalitions : bool array, shape ``(k, n_players)``; ``True`` = the player is present.

        Returns
        -------
        float64 array, shape ``(k, T)``: ``log p(response token t | prompt, masked audio, response tokens < t)``.
        """

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        return self.log_probs(coalitions)


class Backend(ABC):
    """A loaded model. ``name`` is the ``--backend`` value; ``maskings`` the strategies it offers."""

    name: str
    maskings: tuple[str, ...]
    default_masking: str
    model_id: str
    revision: str | None

    @abstractmethod
    def prepare(
        self,
        audio: np.ndarray,
        segmentation: Segmentation,
        *,
        prompt: str | None = None,
        masking: str | None = None,
        seed: int = 0,
        batch_size: int | None = None,
        text_players: bool = False,
        normalization: str | None = None,
        response_words: list[str] | None = None,
    ) -> PreparedGame:
        """Encode ``audio`` (float32 mono at 16 kHz, shape ``(n_samples,)``) once and generate the reference response.

        The players are the segmentation's words, followed, when ``text_players`` is set and the backend supports
        it, by the prompt's words (a joint audio + text game). ``normalization`` (waveform maskings): ``"frozen"``
        normalises every coalition's input with the full utterance's statistics, ``"per-input"`` lets the model's
        front end normalise each masked input anew (see :data:`NORMALIZATIONS`). ``response_words``: for a backend
        whose response is the transcript (ctc), the words scored when the players are not the words themselves
        (native frames, uniform windows); a generating backend's response does not depend on it.
        """

    def check_masking(self, masking: str | None) -> str:
        """The masking to use: ``masking`` if this backend offers it, its default if ``None``."""
        if masking is None:
            return self.default_masking
        if masking not in self.maskings:
            raise InputError(
                f"unknown masking {masking!r} for the {self.name} backend (choose from {', '.join(self.maskings)})"
            )
        return masking



class TorchModelBackend(Backend):
    """A backend whose model is one torch module, ``self.model``: its device and dtype are the model's."""

    model: Any

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.model.parameters()).dtype

#: How a waveform-masked input is normalised by the model's front end: with the full utterance's statistics
#: ("frozen", the default: a present word's input is then exactly what it is in the full utterance), or anew
#: for every coalition ("per-input": a word left alone is rescaled, by 2-9x on the shipped CTC model).
NORMALIZATIONS = ("frozen", "per-input")
DEFAULT_NORMALIZATION = "frozen"


def check_normalization(normalization: str | None) -> str:
    """``normalization`` if known, the default if ``None``; ``InputError`` otherwise."""
    if normalization is None:
        return DEFAULT_NORMALIZATION
    if normalization not in NORMALIZATIONS:
        raise InputError(f"unknown normalization {normalization!r} (choose from {', '.join(NORMALIZATIONS)})")
    return normalization


def check_coalitions(coalitions: np.ndarray, n_players: int) -> np.ndarray:
    """``coalitions`` as a bool array of shape ``(k, n_players)``; a programming error otherwise."""
    coalitions = np.asarray(coalitions)
    if coalitions.ndim != 2 or coalitions.shape[1] != n_players:
        raise ValueError(f"coalitions must have shape (k, {n_players}), got {coalitions.shape}")
    return coalitions.astype(bool, copy=False)


def with_gpu_memory_budget(options: dict[str, Any], device: str) -> dict[str, Any]:
    """``options`` with ``memory_budget_bytes`` set, on a CUDA device, to half of what the GPU has free once the
    weights are loaded (unless the caller chose one): what :func:`batch_size_for_memory` sizes batches from."""
    if str(device).startswith("cuda") and "memory_budget_bytes" not in options:
        import torch

        options = {**options, "memory_budget_bytes": int(0.5 * torch.cuda.mem_get_info(torch.device(device))[0])}
    return options


def batch_size_for_memory(bytes_per_coalition: int, memory_budget_bytes: int = 1 << 30, limit: int = 64) -> int:
    """How many coalitions fit in ``memory_budget_bytes`` of activations, between 1 and ``limit``."""
    return int(max(1, min(limit, memory_budget_bytes // max(1, bytes_per_coalition))))
