"""Shapley values by antithetic permutation sampling.

A permutation adds the players one by one; each player's marginal contribution, averaged over
uniformly random permutations, is an unbiased estimate of its Shapley value. Every permutation is
paired with its reverse: the prefixes of the reversed order are the complements of the prefixes of
the forward one, and a pairwise interaction between two players is credited to the later one in
one order and to the other one in the reverse, so the pair's average is exact for any game without
interactions of order three or more.

When the budget pays for at least :data:`STRATIFY_FROM_PAIRS` pairs, pairs come in quadruples: the second pair is
the first permutation rotated by half its length (and its reverse), so that each player is met early, late and in
both middles. This stratifies the players' positions; ``benchmarks/results/estimators.md`` compares it with
independent pairs (row "permutation-independent-pairs") at equal evaluations. The independent units (quadruples, or
pairs at smaller budgets, where too few quadruples would leave the error unmeasurable) give the standard errors.
With a handful of units a player's own variance is a poor estimate (pair means are discrete and skewed: two pairs
can agree exactly), so each player's variance is moderated towards the mean variance of all players, with
:data:`PRIOR_DOF` prior degrees of freedom (a fixed-prior form of Smyth's moderated t, 2004); t intervals take
``units - 1 + PRIOR_DOF`` degrees of freedom. On real CTC games this brings the coverage of nominal 95 % intervals
from 0.86-0.94 (plain t) to 0.95-0.96 at 2-20 pairs (``benchmarks/results/coverage.md``). A single unit gives no
error estimate (NaN, with a note).
Every walk contains the empty and the full coalition; coalitions met before (small and large ones above all) come
from the cache and cost nothing.
"""

from __future__ import annotations

import numpy as np

from sgpa.attribution.estimators.result import AttributionResult, Run, affordable_groups, max_round, with_total
from sgpa.attribution.game import Game

DRAW_CHUNK = 32  # permutation pairs drawn at a time
#: Quadruples (stratified positions) from this many affordable pairs on; independent pairs below, so that even a
#: small budget has enough independent units to measure its own error.
STRATIFY_FROM_PAIRS = 16
#: Prior degrees of freedom of the moderated variance (see the module docstring).
PRIOR_DOF = 2


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
    stratified = run.remaining // max(1, 2 * (n - 1)) >= STRATIFY_FROM_PAIRS
    pair_means: list[np.ndarray] = []  # float[pairs, n, T + 1] per round
    groups: list[np.ndarray] = []  # int[pairs] per round: the quadruple each pair belongs to
    converged = False
    with game.progress_bar(total=budget, enabled=progress):
        game.v_empty, game.v_full
        # Rounds keep tolerance checks cheap: without a tolerance one round spends the budget.
        round_size = max_round(n) if tolerance is None else max(8 * n, 64)
        n_pairs = n_groups = 0
        while n_pairs < budget:  # the pair cap only matters when nearly everything is cached
            pairs = _draw_pairs(game, rng, min(round_size, run.remaining), min(budget - n_pairs, round_size), stratified)
            if not len(pairs):
                break
            orders = pairs.reshape(-1, n)  # forward, reverse, forward, reverse, ...
            walks = prefix_coalitions(orders)
            values = with_total(game.values(walks.reshape(-1, n))).reshape(len(orders), n + 1, -1)
            contributions = marginal_contributions(orders, values)
            pair_means.append((contributions[0::2] + contributions[1::2]) / 2)
            groups.append(n_groups + np.arange(len(pairs)) // (2 if stratified else 1))
            n_pairs += len(pairs)
            n_groups = groups[-1][-1] + 1
            stderr, _ = _stderr(np.concatenate(pair_means), np.concatenate(groups))
            if tolerance is not None and stderr is not None and stderr[:, :-1].max() < tolerance:
                converged = True
                break
    means = np.concatenate(pair_means)
    units = np.concatenate(groups)
    stderr, dof = _stderr(means, units)
    note = None
    if stderr is None:
        stderr = np.full(means.shape[1:], np.nan)
        note = "one permutation pair only: the budget leaves no second independent unit to measure the error"
    return run.finish("permutation", "shapley", means.mean(axis=0), stderr, converged, dof=dof, note=note)


def quadruples(rng: np.random.Generator, n_players: int, n_quadruples: int) -> np.ndarray:
    """int[2 m, 2, n]: pairs (order, reverse); pairs 2q and 2q + 1 are a random order and its half-turn."""
    n = n_players
    forward = rng.permuted(np.tile(np.arange(n), (n_quadruples, 1)), axis=1)
    turned = np.roll(forward, n // 2, axis=1)
    firsts = np.stack([forward, forward[:, ::-1]], axis=1)
    seconds = np.stack([turned, turned[:, ::-1]], axis=1)
    return np.stack([firsts, seconds], axis=1).reshape(2 * n_quadruples, 2, n)


def independent_pairs(rng: np.random.Generator, n_players: int, n_pairs: int) -> np.ndarray:
    """int[m, 2, n]: pairs (order, reverse) of independent uniform random orders."""
    forward = rng.permuted(np.tile(np.arange(n_players), (n_pairs, 1)), axis=1)
    return np.stack([forward, forward[:, ::-1]], axis=1)


def _draw_pairs(
    game: Game, rng: np.random.Generator, new_budget: int, max_pairs: int, stratified: bool = True
) -> np.ndarray:
    """int[m, 2, n]: pairs of :func:`quadruples` (or :func:`independent_pairs`), as many as ``new_budget`` pays for."""
    n = game.n_players
    chunks: list[np.ndarray] = []
    pending: set[bytes] = set()
    n_pairs = 0
    while n_pairs < max_pairs:
        pairs = quadruples(rng, n, DRAW_CHUNK // 2) if stratified else independent_pairs(rng, n, DRAW_CHUNK)
        walks = prefix_coalitions(pairs).reshape(DRAW_CHUNK, 2 * (n + 1), n)
        accepted = affordable_groups(game, walks, pending, new_budget)
        chunks.append(pairs[:accepted])
        n_pairs += accepted
        if accepted < DRAW_CHUNK:
            break
    return np.concatenate(chunks)[:max_pairs]


def _stderr(pair_means: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Moderated standard error of the mean of ``pair_means`` (float[m, n, T]) with correlated ``groups``, and the
    degrees of freedom of its t intervals.

    Pairs of one quadruple are correlated by design, so the spread is measured between groups (the cluster-robust
    variance of a mean, ``G - 1`` degrees of freedom); each player's variance is then pooled with the mean variance
    over players by :data:`PRIOR_DOF` prior degrees of freedom (see the module docstring). ``(None, 0)`` for one group.
    """
    n_groups = int(groups[-1]) + 1
    if n_groups < 2:
        return None, 0.0
    mean = pair_means.mean(axis=0)
    deviations = np.zeros((n_groups,) + pair_means.shape[1:])
    np.add.at(deviations, groups, pair_means - mean)
    variance = (deviations**2).sum(axis=0) * n_groups / (n_groups - 1) / len(pair_means) ** 2
    dof = n_groups - 1
    pooled = variance.mean(axis=0, keepdims=True)  # over players, for each output
    moderated = (dof * variance + PRIOR_DOF * pooled) / (dof + PRIOR_DOF)
    return np.sqrt(moderated), float(dof + PRIOR_DOF)
