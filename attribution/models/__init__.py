"""Model backends: one interface (:mod:`sgpa.attribution.models.base`), LFM2-Audio and CTC recognisers.

:func:`detect_backend` and :func:`load_backend` are the one place that maps a model (hub id or folder) to its
backend; the notebook API, the command line and the service all go through them. Backends import torch,
transformers and liquid-audio lazily; importing this package is cheap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sgpa.errors import InputError

#: ``--backend`` names, and the token grid each one's players are mapped to (stage 4).
BACKEND_GRIDS = {"ctc": "wav2vec2", "lfm2-audio": "lfm2-audio"}
BACKENDS = tuple(BACKEND_GRIDS)


def detect_backend(model: str | Path | None) -> str:
    """The backend of a model: ``lfm2-audio`` for an LFM2-Audio checkpoint (a local ``config.json`` with an ``lfm``
    section, or a hub id naming LFM2-Audio), ``ctc`` otherwise (including ``None``: the shipped CTC recogniser)."""
    if model is None:
        return "ctc"
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        try:
            return "lfm2-audio" if "lfm" in json.loads(config.read_text(encoding="utf-8")) else "ctc"
        except (OSError, json.JSONDecodeError, TypeError):
            return "ctc"
    name = str(model).lower()
    return "lfm2-audio" if "lfm2" in name and "audio" in name else "ctc"


def backend_maskings(backend: str) -> tuple[str, ...]:
    """The maskings a backend offers (``--masking`` values), without loading a model."""
    if backend == "ctc":
        from sgpa.attribution.models.ctc import MASKINGS
    elif backend == "lfm2-audio":
        from sgpa.attribution.models.lfm2_audio import MASKINGS
    else:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    return MASKINGS


def load_backend(
    model: str | Path | None = None,
    backend: str | None = None,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    max_new_tokens: int = 32,
    acoustic_model: Any = None,
) -> Any:
    """Load a model as an explanation backend (a :class:`~sgpa.attribution.models.base.Backend`).

    Parameters
    ----------
    model
        A hub id or a local folder; ``None``: the backend's shipped model — the CTC recogniser ``sgpa-ctc-en`` for
        ``ctc``, the oracle ``sgpa-lfm2-oracle`` (a small LFM2-Audio trained on spoken questions with known
        answers) for ``lfm2-audio``.
    backend
        ``"ctc"`` or ``"lfm2-audio"``; ``None``: detected from ``model`` (:func:`detect_backend`).
    device, dtype
        Torch device, and weights dtype for LFM2-Audio (``"bfloat16"`` on a GPU; log-probs are taken in float32).
    max_new_tokens
        Length cap of LFM2-Audio's reference response.
    acoustic_model
        An already loaded :class:`sgpa.ctc.AcousticModel` for the ``ctc`` backend (the aligner's), so it is not
        loaded twice.
    """
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    backend = backend or detect_backend(model)
    if backend not in BACKEND_GRIDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, not {max_new_tokens}")
    if backend == "ctc":
        from sgpa.attribution.models.ctc import CtcBackend

        if acoustic_model is not None:
            return CtcBackend(acoustic_model)
        return CtcBackend.load(model, device=device)
    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend, default_model_dir

    if model is None:
        model = default_model_dir()
    return Lfm2AudioBackend.load(model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
