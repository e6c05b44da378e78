"""Are attributions faithful to the model? Deletion and insertion tests on a word-level value function.

Small functions over a scalar value function ``value(coalitions: bool[k, n]) -> float[k]`` (the sum over response
tokens of a backend's game, usually through a cached :class:`~sgpa.attribution.game.Game`, so every coalition is
paid for once) and a ranking of the ``n`` words.

* :func:`deletion_curve` / :func:`insertion_curve`: remove (add) the top-k words together, ``k = 0..n``;
* :func:`aopc`: the area over the perturbation curve, normalised by ``v(N) - v(empty)`` so that utterances compare;
* :func:`single_word_drops`: ``v(N) - v(N minus i)``, the leave-one-out ranking and the target of the rank test;
* :func:`random_deletion_aopc`: the AOPC of random orders (the baseline an attribution must beat).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ValueFn = Callable[[np.ndarray], np.ndarray]


def deletion_coalitions(order: np.ndarray, n: int) -> np.ndarray:
    """bool[n + 1, n]: the full coalition, then without ``order[0]``, then without ``order[:2]``, ..., empty."""
    coalitions = np.ones((n + 1, n), dtype=bool)
    for k, player in enumerate(order, start=1):
        coalitions[k:, player] = False
    return coalitions


def deletion_curve(value: ValueFn, order: np.ndarray) -> np.ndarray:
    """float[n + 1]: the value after deleting the first ``k`` players of ``order`` (``k = 0..n``)."""
    order = np.asarray(order)
    return np.asarray(value(deletion_coalitions(order, order.size)), dtype=float)


def insertion_curve(value: ValueFn, order: np.ndarray) -> np.ndarray:
    """float[n + 1]: the value with only the first ``k`` players of ``order`` present (``k = 0..n``)."""
    order = np.asarray(order)
    return np.asarray(value(~deletion_coalitions(order, order.size)), dtype=float)


def aopc(curve: np.ndarray, kind: str = "deletion") -> float:
    """Normalised area over a deletion curve (under an insertion curve): the mean over ``k = 1..n`` of
    ``(v(N) - curve[k]) / (v(N) - v(empty))`` for deletion, ``(curve[k] - v(empty)) / (v(N) - v(empty))`` for
    insertion. Higher = the ranking puts the words that matter first. NaN when ``v(N) == v(empty)``."""
    curve = np.asarray(curve, dtype=float)
    if kind == "deletion":
        full, empty = curve[0], curve[-1]
        span = full - empty
        return float(np.mean((full - curve[1:]) / span)) if span != 0 else float("nan")
    if kind == "insertion":
        empty, full = curve[0], curve[-1]
        span = full - empty
        return float(np.mean((curve[1:] - empty) / span)) if span != 0 else float("nan")
    raise ValueError(f"kind must be 'deletion' or 'insertion', got {kind!r}")


def single_word_drops(value: ValueFn, n: int) -> np.ndarray:
    """float[n]: ``v(N) - v(N minus i)`` for every player ``i``."""
    coalitions = np.ones((n + 1, n), dtype=bool)
    coalitions[np.arange(1, n + 1), np.arange(n)] = False
    values = np.asarray(value(coalitions), dtype=float)
    return values[0] - values[1:]


def random_deletion_aopc(value: ValueFn, n: int, n_orders: int = 20, seed: int = 0) -> float:
    """Mean deletion AOPC of ``n_orders`` uniformly random orders (seeded)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([aopc(deletion_curve(value, rng.permutation(n))) for _ in range(n_orders)]))


def ranking(phi: np.ndarray) -> np.ndarray:
    """Players by decreasing ``phi`` (ties by index): the order in which deletion removes them."""
    return np.argsort(-np.asarray(phi, dtype=float), kind="stable")
