"""Shapley values by antithetic permutation sampling.

A permutation adds the players one by one; each player's marginal contribution, averaged over
uniformly random permutations, is an unbiased estimate of its Shapley value. Every permutation is
paired with its reverse: the prefixes of the reversed order are the complements of the prefixes of
the forward one, and a pairwise interaction between two players is credited to the later one in
one order and to the other one in the reverse, so the pair's average is exact for any game without
interactions of order three or more. The pair averages are independent, which gives the standard
errors. Both walks contain the empty and the full coalition; coalitions met before (the same
prefix from another permutation, small and large coalitions above all) come from the cache and
cost nothing.
"""

from __future__ import annotations

import numpy as np

from attribution.estimators.result import AttributionResult, Run, affordable_groups, with_total
from attribution.game import Game

DRAW_CHUNK = 32  # permutation pairs drawn at a time


def prefix_coalitions(orders: np.ndarray) -> np.ndarray:
    """The coalitions met walking each order: bool[..., n + 1, n] for orders int[..., n].

    Row ``k`` of a walk holds the first ``k`` players of its order (row 0 empty, row n full).
    """
    n = orders.shape[-1]
    positions = np.argsort(orders, axis=-1)  # position of each player in its order
    return positions[..., None, :] < np.arange(n + 1)[:, None]


def marginal_contributions(orders: np.ndarray, walk_values: np.ndarray) -> np.ndarray:
    """Each player's marginal contribution along each order.

    Parameters
    ----------
    orders : int[m, n]
    walk_values : float[m, n + 1, T]
        Values of :func:`prefix_coalitions` ``(orders)``.

    Returns
    -------
    float[m, n, T]
    """
    contributions = np.empty((orders.shape[0], orders.shape[1], walk_values.shape[2]))
    contributions[np.arange(len(orders))[:, None], orders] = np.diff(walk_values, axis=1)
    return contributions


def approximate(
    game: Game,
    budget: int,
    tolerance: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> AttributionResult:
    """Shapley values from antithetic pairs of random permutations.

    Parameters
    ----------
    game : Game
    budget : int
        Most distinct evaluations; one pair of permutations costs at most ``2 (n - 1)`` beyond the
        empty and full coalition, so the minimum is ``2 n``.
    tolerance : float, optional
        Stop once the largest standard error (over players and outputs) is below it.
    seed : int
        Seed of the random permutations.
    progress : bool
        Show a progress bar over the evaluations.

    Returns
    -------
    AttributionResult
        ``index="shapley"``; efficiency holds exactly (each walk telescopes to ``v_full - v_empty``).
    """
    n = game.n_players
    run = Run(game, budget, minimum=2 * n, method="permutation")
    rng = np.random.default_rng(seed)
    pair_means: list[np.ndarray] = []  # float[pairs, n, T + 1] per round
    converged = False
    with game.progress_bar(total=budget, enabled=progress):
        game.v_empty, game.v_full
        # Rounds keep tolerance checks cheap: without a tolerance one round spends the budget.
        round_size = run.remaining if tolerance is None else max(8 * n, 64)
        n_pairs = 0
        while n_pairs < budget:  # the pair cap only matters when nearly everything is cached
            pairs = _draw_pairs(game, rng, min(round_size, run.remaining), max_pairs=budget - n_pairs)
            if not len(pairs):
                break
            orders = pairs.reshape(-1, n)  # forward, reverse, forward, reverse, ...
            walks = prefix_coalitions(orders)
            values = with_total(game.values(walks.reshape(-1, n))).reshape(len(orders), n + 1, -1)
            contributions = marginal_contributions(orders, values)
            pair_means.append((contributions[0::2] + contributions[1::2]) / 2)
            n_pairs += len(pairs)
            stderr = _stderr(pair_means)
            if tolerance is not None and stderr is not None and stderr[:, :-1].max() < tolerance:
                converged = True
                break
    phi = np.concatenate(pair_means).mean(axis=0)
    return run.finish("permutation", "shapley", phi, _stderr(pair_means), converged)


def _draw_pairs(game: Game, rng: np.random.Generator, new_budget: int, max_pairs: int) -> np.ndarray:
    """int[m, 2, n]: random orders and their reverses, as many pairs as ``new_budget`` pays for."""
    n = game.n_players
    chunks: list[np.ndarray] = []
    pending: set[bytes] = set()
    n_pairs = 0
    while n_pairs < max_pairs:
        forward = rng.permuted(np.tile(np.arange(n), (DRAW_CHUNK, 1)), axis=1)
        pairs = np.stack([forward, forward[:, ::-1]], axis=1)
        walks = prefix_coalitions(pairs).reshape(DRAW_CHUNK, 2 * (n + 1), n)
        accepted = affordable_groups(game, walks, pending, new_budget)
        chunks.append(pairs[:accepted])
        n_pairs += accepted
        if accepted < DRAW_CHUNK:
            break
    return np.concatenate(chunks)[:max_pairs]


def _stderr(pair_means: list[np.ndarray]) -> np.ndarray | None:
    pairs = np.concatenate(pair_means)
    if len(pairs) < 2:
        return None
    return np.std(pairs, axis=0, ddof=1) / np.sqrt(len(pairs))
