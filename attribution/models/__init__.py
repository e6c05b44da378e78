"""Model backends: one interface (:mod:`sgpa.attribution.models.base`): LFM2-Audio (liquid-audio), Whisper and
Qwen2-Audio and Voxtral (transformers), and CTC recognisers.

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
BACKEND_GRIDS = {"ctc": "wav2vec2", "lfm2-audio": "lfm2-audio", "whisper": "whisper", "qwen2-audio": "qwen2-audio",
                 "voxtral": "voxtral"}
BACKENDS = tuple(BACKEND_GRIDS)
#: transformers ``model_type`` (config.json) -> backend.
MODEL_TYPES = {"whisper": "whisper", "qwen2_audio": "qwen2-audio", "voxtral": "voxtral"}
#: CTC recognisers transformers loads as ``AutoModelForCTC`` (the ``ctc`` backend).
CTC_MODEL_TYPES = ("wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "sew", "sew-d", "unispeech",
                   "unispeech-sat", "mctct", "wav2vec2-bert", "parakeet_ctc")


def detect_backend(model: str | Path | None) -> str:
    """The backend of a model, from a local ``config.json`` (an ``lfm`` section: LFM2-Audio; ``model_type``
    ``whisper`` / ``qwen2_audio`` / ``voxtral``) or a hub id's name; ``ctc`` otherwise
    (including ``None``: the shipped CTC recogniser)."""
    if model is None:
        return "ctc"
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return "ctc"
        if not isinstance(data, dict):
            return "ctc"
        if "lfm" in data:
            return "lfm2-audio"
        model_type = data.get("model_type")
        if model_type in MODEL_TYPES:
            return MODEL_TYPES[model_type]
        if model_type is not None and model_type not in CTC_MODEL_TYPES:
            raise InputError(f"{model}: a {model_type!r} checkpoint is not a model sgpa explains (LFM2-Audio, "
                             f"{', '.join(MODEL_TYPES)} or a CTC recogniser such as wav2vec2)")
        return "ctc"
    name = str(model).lower()
    if "lfm2" in name and "audio" in name:
        return "lfm2-audio"
    if "qwen2-audio" in name or "qwen2_audio" in name:
        return "qwen2-audio"
    if "voxtral" in name:
        return "voxtral"
    return "whisper" if "whisper" in name else "ctc"


def backend_maskings(backend: str) -> tuple[str, ...]:
    """The maskings a backend offers (``--masking`` values), without loading a model."""
    if backend == "ctc":
        from sgpa.attribution.models.ctc import MASKINGS
    elif backend == "lfm2-audio":
        from sgpa.attribution.models.lfm2_audio import MASKINGS
    elif backend == "whisper":
        from sgpa.attribution.models.whisper import MASKINGS
    elif backend in ("qwen2-audio", "voxtral"):
        from sgpa.attribution.models.audio_llm import MASKINGS
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
        One of :data:`BACKENDS` (``"ctc"``, ``"lfm2-audio"``, ``"whisper"``, ``"qwen2-audio"``, ``"voxtral"``);
        ``None``: detected from ``model`` (:func:`detect_backend`). Whisper, Qwen2-Audio and Voxtral have no shipped
        model.
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
    if backend in ("whisper", "qwen2-audio", "voxtral"):
        if model is None:
            raise InputError(f"the {backend} backend has no shipped model: give --model (a hub id or a local folder)")
        from sgpa.attribution.models.audio_llm import Qwen2AudioBackend, VoxtralBackend
        from sgpa.attribution.models.whisper import WhisperBackend

        transformers_backend = {"whisper": WhisperBackend, "qwen2-audio": Qwen2AudioBackend,
                                "voxtral": VoxtralBackend}[backend]
        return transformers_backend.load(model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
    from sgpa.attribution.models.lfm2_audio import Lfm2AudioBackend, default_model_dir

    if model is None:
        model = default_model_dir()
    return Lfm2AudioBackend.load(model, device=device, dtype=dtype, max_new_tokens=max_new_tokens)
