"""Model backends: one interface (:mod:`attribution.models.base`), LFM2-Audio and CTC recognisers.

Backends import torch, transformers and liquid-audio lazily; importing this package is cheap.
"""
