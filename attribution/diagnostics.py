"""Diagnostics of an explanation: what SGPA's word players save, and how concentrated the attributions are.

Small pure functions over arrays. Concentration is computed on attribution magnitudes ``|phi|``
(a word that strongly lowers the value matters as much as one that raises it).
"""

from __future__ import annotations

import math
from typing import Any

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


def entropy_over_sqrt_n(phi: np.ndarray) -> float:
    """Shannon entropy of the attribution shares divided by ``sqrt(n)``: the published reference's "normalised
    entropy" (arXiv 2603.02250), kept for comparison only. It is not bounded by 1 and shrinks with ``n`` for a fixed
    shape, so it does not compare player sets of different sizes; :func:`normalized_entropy` does."""
    shares = attribution_shares(phi)
    if shares.size < 1 or shares.sum() == 0:
        return float("nan")
    nonzero = shares[shares > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / math.sqrt(shares.size))


def top_fraction_mass(phi: np.ndarray, fraction: float = 0.2) -> float:
    """Share of the total ``|phi|`` held by the largest ``ceil(fraction * n)`` magnitudes (top 20 % by default)."""
    n = np.size(phi)
    return top_k_mass(phi, max(1, math.ceil(fraction * n))) if n else float("nan")


def concentration(phi: np.ndarray) -> dict[str, float]:
    """The concentration figures reported with every explanation (on the scalar attributions, shape ``[n]``)."""
    return {
        "normalized_entropy": normalized_entropy(phi),
        "entropy_over_sqrt_n": entropy_over_sqrt_n(phi),
        "gini": gini(phi),
        "top1_mass": top_k_mass(phi, 1),
        "top3_mass": top_k_mass(phi, 3),
        "top20pct_mass": top_fraction_mass(phi, 0.2),
    }


def overlap_matrix(spans_s: np.ndarray, targets_s: np.ndarray) -> np.ndarray:
    """Seconds of overlap of every span with every target span: ``(m, 2)``, ``(n, 2)`` -> ``(m, n)``."""
    spans_s, targets_s = np.asarray(spans_s, dtype=float), np.asarray(targets_s, dtype=float)
    low = np.maximum(spans_s[:, None, 0], targets_s[None, :, 0])
    high = np.minimum(spans_s[:, None, 1], targets_s[None, :, 1])
    return np.clip(high - low, 0.0, None)


def map_onto_words(phi: np.ndarray, player_spans_s: np.ndarray, word_spans_s: np.ndarray) -> np.ndarray:
    """Attributions of time-span players (native tokens, uniform windows) summed onto words by time overlap.

    Each player's value is split among the words in proportion to the seconds it shares with each; the part of a
    player lying outside every word (leading/trailing non-speech) belongs to no word and is dropped.

    Parameters
    ----------
    phi : ``(m,)`` or ``(m, T)``
    player_spans_s : ``(m, 2)`` seconds; word_spans_s : ``(n, 2)`` seconds.

    Returns
    -------
    ``(n,)`` or ``(n, T)``
    """
    overlap = overlap_matrix(player_spans_s, word_spans_s)
    durations = np.asarray(player_spans_s, dtype=float) @ np.array([-1.0, 1.0])
    weights = overlap / np.where(durations > 0, durations, 1.0)[:, None]  # (m, n)
    return weights.T @ np.asarray(phi, dtype=float)


def cumulative_profile(
    phi: np.ndarray, spans_s: np.ndarray, start_s: float, end_s: float, n_points: int = 50
) -> np.ndarray:
    """Cumulative share of ``|phi|`` over normalised time of the speech ``[start_s, end_s]``, on ``n_points`` points.

    A player's magnitude is spread uniformly over its span (clipped to the speech). Point ``j`` is at normalised time
    ``j / (n_points - 1)``; the profile rises from 0 to 1 (all zeros if every attribution is zero).
    """
    grid_s = start_s + (end_s - start_s) * np.linspace(0.0, 1.0, n_points)
    spans = np.clip(np.asarray(spans_s, dtype=float), start_s, end_s)
    magnitude = np.abs(np.asarray(phi, dtype=float))
    lengths = spans[:, 1] - spans[:, 0]
    inside = lengths > 0
    if not inside.any() or magnitude[inside].sum() == 0:
        return np.zeros(n_points)
    done = np.clip((grid_s[None, :] - spans[inside, :1]) / lengths[inside, None], 0.0, 1.0)  # (m, n_points)
    return magnitude[inside] @ done / magnitude[inside].sum()


def temporal_alignment(phi: np.ndarray, centres_s: np.ndarray, start_s: float, end_s: float, k: int = 8) -> np.ndarray:
    """Mean ``|Phi|`` on a ``k x k`` grid of input time (rows) by output position (columns), summing to 1.

    ``phi`` is ``(m, T)`` (players by response tokens), ``centres_s`` the players' centre times. Input time is
    normalised over the speech ``[start_s, end_s]``, output position ``t / T``; each cell holds the mean magnitude of
    the entries that fall into it (0 where none do), and the grid is divided by its sum (Dr. SHAP-AV's temporal
    view). See :func:`diagonal_score`.
    """
    phi = np.abs(np.asarray(phi, dtype=float))
    m, n_outputs = phi.shape
    rows = np.clip(((np.asarray(centres_s) - start_s) / max(end_s - start_s, 1e-9) * k).astype(int), 0, k - 1)
    columns = np.minimum((np.arange(n_outputs) * k) // max(n_outputs, 1), k - 1)
    sums = np.zeros((k, k))
    counts = np.zeros((k, k))
    np.add.at(sums, (rows[:, None], columns[None, :]), phi)
    np.add.at(counts, (rows[:, None], columns[None, :]), 1.0)
    grid = np.divide(sums, counts, out=np.zeros((k, k)), where=counts > 0)
    total = grid.sum()
    return grid / total if total > 0 else grid


def diagonal_score(grid: np.ndarray) -> float:
    """``mean(diagonal) / mean(off-diagonal)`` of a :func:`temporal_alignment` grid: above 1 when output position
    ``t`` rests on the input heard at the same relative time (NaN if the off-diagonal is all zero)."""
    grid = np.asarray(grid, dtype=float)
    diagonal = np.diag(grid)
    off = grid[~np.eye(len(grid), dtype=bool)]
    return float(diagonal.mean() / off.mean()) if off.size and off.mean() > 0 else float("nan")


def modality_shares(phi: np.ndarray, is_audio: np.ndarray, n_windows: int = 4) -> dict[str, Any]:
    """Dr. SHAP-AV's modality views of a joint audio + text game's ``Phi`` (players x response tokens, ``(m, T)``).

    ``a_shap``: the audio players' share of ``sum |Phi|`` (``t_shap = 1 - a_shap``); ``generative``: the same share
    within each of ``n_windows`` equal windows of the response (Generative SHAP: does the answer lean on the audio
    early and on the prompt late?), ``None`` for a window holding no response token.
    """
    magnitude = np.abs(np.asarray(phi, dtype=float))
    is_audio = np.asarray(is_audio, dtype=bool)
    total = magnitude.sum()
    a_shap = float(magnitude[is_audio].sum() / total) if total > 0 else float("nan")
    windows = np.minimum((np.arange(magnitude.shape[1]) * n_windows) // max(magnitude.shape[1], 1), n_windows - 1)
    generative: list[float | None] = []
    for w in range(n_windows):
        block = magnitude[:, windows == w]
        generative.append(float(block[is_audio].sum() / block.sum()) if block.size and block.sum() > 0 else None)
    return {"a_shap": a_shap, "t_shap": 1.0 - a_shap if a_shap == a_shap else float("nan"), "generative": generative}
