"""sgpa: Spectrogram-Guided Phonetic Alignment for word-level explanations of audio-language models.

The notebook API, in two or three calls::

    import sgpa
    seg = sgpa.align("clip.wav", "the old man found a small red box")
    exp = sgpa.explain("clip.wav", seg)              # or model="LiquidAI/LFM2-Audio-1.5B", prompt="..."
    exp.plot()

Importing the package is cheap: the names below load their modules on first use, and models load only when a
function needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "align": "sgpa.api",
    "explain": "sgpa.api",
    "load_aligner": "sgpa.api",
    "load_backend": "sgpa.api",
    "clear_cache": "sgpa.api",
    "AlignConfig": "sgpa.pipeline",
    "Segmentation": "sgpa.segmentation",
    "Explanation": "sgpa.attribution.explanation",
    "InputError": "sgpa.errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sgpa' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
