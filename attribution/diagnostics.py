"""Diagnostics of an explanation: what SGPA's word players save, and how concentrated the attributions are.

Small pure functions over arrays. Concentration is computed on attribution magnitudes ``|phi|``
(a word that strongly lowers the value matters as much as one that raises it).
"""

from __future__ import annotations

import math

import numpy as np


def log10_coalitions(n_players: int) -> float:
    """``log10(2**n_players)``: the size of an exact game, kept finite for any ``n``."""
    return n_players * math.log10(2.0)


def evaluation_cost(n_words: int, n_native_tokens: int) -> dict[str, float | int]:
    """Exact-game sizes with SGPA's word players versus the model's native audio tokens as players.

    Parameters
    ----------
    n_words : int
        Number of word players.
    n_native_tokens : int
        Number of encoder tokens the audio spans (LFM2-Audio: one per 80 ms).

    Returns
    -------
    dict
        ``log10_coalitions_words``, ``log10_coalitions_tokens`` and ``log10_reduction`` (their
        difference: how many orders of magnitude fewer model evaluations an exact explanation needs),
        plus both player counts.
    """
    words = log10_coalitions(n_words)
    tokens = log10_coalitions(n_native_tokens)
    return {
        "n_word_players": int(n_words),
        "n_native_token_players": int(n_native_tokens),
        "log10_coalitions_words": words,
        "log10_coalitions_tokens": tokens,
        "log10_reduction": tokens - words,
    }


def attribution_shares(phi: np.ndarray) -> np.ndarray:
    """``|phi| / sum |phi|`` (shape ``[n]``); all zeros when every attribution is zero."""
    magnitude = np.abs(np.asarray(phi, dtype=float))
    total = magnitude.sum()
    return magnitude / total if total > 0 else np.zeros_like(magnitude)


def normalized_entropy(phi: np.ndarray) -> float:
    """Shannon entropy of the attribution shares divided by ``log(n)``.

    1 means the attribution is spread evenly over all players, 0 that one player holds all of it.
    NaN for fewer than two players or all-zero attributions.
    """
    shares = attribution_shares(phi)
    if shares.size < 2 or shares.sum() == 0:
        return float("nan")
    nonzero = shares[shares > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / math.log(shares.size))


def gini(phi: np.ndarray) -> float:
    """Gini coefficient of ``|phi|``: ``sum_ij |x_i - x_j| / (2 n sum x)``.

    0 for equal magnitudes, ``(n - 1) / n`` when a single player holds everything; NaN when all are zero.
    """
    magnitude = np.sort(np.abs(np.asarray(phi, dtype=float)))
    n, total = magnitude.size, magnitude.sum()
    if n == 0 or total == 0:
        return float("nan")
    # For sorted x, sum_ij |x_i - x_j| = 2 sum_i (2 i - n + 1) x_i with 0-based ranks i.
    ranks = np.arange(n)
    return float(np.sum((2 * ranks - n + 1) * magnitude) / (n * total))


def top_k_mass(phi: np.ndarray, k: int) -> float:
    """Share of the total ``|phi|`` held by the ``k`` largest magnitudes."""
    shares = np.sort(attribution_shares(phi))[::-1]
    return float(shares[:k].sum())


def concentration(phi: np.ndarray) -> dict[str, float]:
    """The concentration figures reported with every explanation (on the scalar attributions, shape ``[n]``)."""
    return {
        "normalized_entropy": normalized_entropy(phi),
        "gini": gini(phi),
        "top1_mass": top_k_mass(phi, 1),
        "top3_mass": top_k_mass(phi, 3),
    }
