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

from attribution.estimators.result import AttributionResult, Run, with_total
from attribution.game import Game, coalition_keys


def prefix_coalitions(order: np.ndarray) -> np.ndarray:
    """bool[n + 1, n]: the coalitions met walking ``order``; row ``k`` holds its first ``k`` players."""
    n = len(order)
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    return ranks[None, :] < np.arange(n + 1)[:, None]


def marginal_contributions(order: np.ndarray, walk_values: np.ndarray) -> np.ndarray:
    """float[n, T]: each player's marginal contribution along ``order``.

    ``walk_values`` (float[n + 1, T]) are the values of :func:`prefix_coalitions` ``(order)``.
    """
    contributions = np.empty((len(order), walk_values.shape[1]))
    contributions[order] = np.diff(walk_values, axis=0)
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
    pair_means: list[np.ndarray] = []  # one float[n, T + 1] per antithetic pair
    converged = False
    with game.progress_bar(total=budget, enabled=progress):
        game.v_empty, game.v_full
        # Rounds keep tolerance checks cheap: without a tolerance one round spends the budget.
        round_size = run.remaining if tolerance is None else max(8 * n, 64)
        while True:
            orders = _draw_pairs(game, rng, min(round_size, run.remaining), max_pairs=budget)
            if not orders:
                break
            walks = np.concatenate([prefix_coalitions(order) for order in orders])
            values = with_total(game.values(walks)).reshape(len(orders), n + 1, -1)
            for forward, backward, f_values, b_values in zip(
                orders[::2], orders[1::2], values[::2], values[1::2]
            ):
                pair_means.append(
                    (marginal_contributions(forward, f_values)
                     + marginal_contributions(backward, b_values)) / 2
                )
            stderr = _stderr(pair_means)
            if tolerance is not None and stderr is not None and stderr.max() < tolerance:
                converged = True
                break
            if len(pair_means) >= budget:  # only reached when nearly everything is cached
                break
    phi = np.mean(pair_means, axis=0)
    return run.finish("permutation", "shapley", phi, _stderr(pair_means), converged)


def _draw_pairs(game: Game, rng: np.random.Generator, new_budget: int, max_pairs: int) -> list:
    """Random permutations and their reverses, as many pairs as ``new_budget`` new evaluations pay for."""
    n = game.n_players
    orders: list[np.ndarray] = []
    pending: set[bytes] = set()
    for _ in range(max_pairs):
        forward = rng.permutation(n)
        pair = [forward, forward[::-1].copy()]
        walks = np.concatenate([prefix_coalitions(order) for order in pair])
        new_keys = {
            key for key, cached in zip(coalition_keys(walks), game.is_cached(walks)) if not cached
        }
        if len(pending | new_keys) > new_budget:
            break
        pending |= new_keys
        orders.extend(pair)
    return orders


def _stderr(pair_means: list[np.ndarray]) -> np.ndarray | None:
    if len(pair_means) < 2:
        return None
    return np.std(pair_means, axis=0, ddof=1) / np.sqrt(len(pair_means))
