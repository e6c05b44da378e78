"""Where models come from: fail fast, in one line, when a device or a hub model cannot be had.

transformers and liquid-audio would otherwise retry an unreachable hub for minutes and print dozens of lines, and
``--device cuda`` on a machine without a GPU would fail deep inside torch (or silently run on the CPU).
"""

from __future__ import annotations

import os

from sgpa.errors import InputError


def check_device(device: str) -> None:
    """``InputError`` unless torch can run on ``device`` here (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"unknown device {device!r}: {' '.join(str(error).split())[:120]}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r}: no CUDA device is available on this machine; use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: MPS is not available on this machine")


def check_hub_model(repo_id: str, filename: str = "config.json") -> None:
    """``InputError`` unless the hub model ``repo_id`` is in the local cache or the hub answers for it.

    One quick request (5 s time-out) instead of transformers' minutes of retries; with ``HF_HUB_OFFLINE`` set, the
    cache alone decides.
    """
    import huggingface_hub

    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, filename), str):
        return
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise InputError(f"{repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set")
    try:
        huggingface_hub.model_info(repo_id, timeout=5)
    except huggingface_hub.errors.RepositoryNotFoundError:
        raise InputError(f"{repo_id!r}: no such model on the Hugging Face hub (or it is private)") from None
    except Exception as error:  # connection errors come in many types (httpx, requests, OSError)
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise InputError(
            f"cannot reach the Hugging Face hub for {repo_id!r} ({reason}) and it is not in the local cache: "
            "check the network, or pass a local model folder"
        ) from None
