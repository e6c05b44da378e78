"""Shapley values by paired, weighted least squares (KernelSHAP / Leverage-SHAP style).

The Shapley values are the solution of a weighted least-squares problem over all coalitions
``S`` (Lundberg & Lee 2017; Charnes et al. 1988)::

    minimise  sum_S  k(|S|) (v(S) - v(empty) - sum_{i in S} phi_i)**2
    subject to  sum_i phi_i = v(full) - v(empty)

with the Shapley kernel ``k(s) = (n - 1) / (C(n, s) s (n - s))``. This module solves it on part of
the coalitions:

1. whole sizes are enumerated, outermost first (sizes ``s`` and ``n - s`` together), while the
   budget share a size would get from sampling is at least its number of coalitions (the rule of
   shap's KernelExplainer); with a budget of ``2**n`` everything is enumerated and the result is exact;
2. the other sizes are sampled: a size uniformly (``sampling="leverage"``, the default; Leverage
   SHAP, Musco & Witter 2025: proportional to the leverage scores) or with probability
   proportional to its kernel mass ``(n - 1) / (s (n - s))`` (``sampling="kernel"``, KernelSHAP),
   then a uniform
   coalition of that size *and its complement* (paired sampling; it cancels the even-order
   part of the error, and makes the estimate exact for games of order two once the system has
   full rank); samples are importance-weighted by ``k / p``;
3. efficiency is a constraint of the least-squares problem, so it holds exactly;
4. standard errors come from a grouped jackknife over the sampled pairs (enumerated sizes are fixed): the pairs
   are dealt into at most :data:`JACKKNIFE_GROUPS` groups, the estimate is recomputed without each group, and
   t intervals take ``groups - 1`` degrees of freedom. On real CTC games a 100-resample bootstrap with normal
   quantiles covered 0.905 at 10 n (``benchmarks/results/coverage.md``); the jackknife also costs at most 30 solves.
"""

from __future__ import annotations

from math import comb

import numpy as np

from sgpa.attribution.estimators.result import AttributionResult, Run, affordable_groups, max_round, with_total
from sgpa.attribution.game import Game

JACKKNIFE_GROUPS = 30
DRAW_CHUNK = 64  # coalition pairs drawn at a time


def size_masses(n_players: int) -> np.ndarray:
    """float[n + 1]: total Shapley-kernel weight of all coalitions of each size (0 for 0 and n)."""
    n = n_players
    masses = np.zeros(n + 1)
    sizes = np.arange(1, n)
    masses[1:n] = (n - 1) / (sizes * (n - sizes))
    return masses


def coalitions_of_size(n_players: int, size: int) -> np.ndarray:
    """bool[C(n, size), n]: every coalition with ``size`` members."""
    from itertools import combinations

    rows = np.zeros((comb(n_players, size), n_players), dtype=bool)
    for row, members in enumerate(combinations(range(n_players), size)):
        rows[row, list(members)] = True
    return rows


def plan_enumeration(
    n_players: int, budget: int, sampling_masses: np.ndarray
) -> tuple[list[int], list[int]]:
    """Split the sizes 1..n-1 into those to enumerate and those to sample.

    Parameters
    ----------
    n_players : int
    budget : int
        Evaluations available beyond the empty and full coalition.
    sampling_masses : float[n + 1]
        Relative probability of each size under the sampling distribution.

    Returns
    -------
    enumerated, sampled : list of int
        Coalition sizes.
    """
    n = n_players
    if budget >= 2**n - 2:
        return list(range(1, n)), []
    enumerated: list[int] = []
    remaining = list(range(1, n))
    left = float(budget)
    for small in range(1, n // 2 + 1):
        sizes = sorted({small, n - small})
        count = sum(comb(n, s) for s in sizes)
        share = sampling_masses[sizes].sum() / sampling_masses[remaining].sum()
        if left * share < count:
            break
        enumerated += sizes
        remaining = [s for s in remaining if s not in sizes]
        left -= count
    return enumerated, remaining


def solve_constrained(a: np.ndarray, b: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Least squares with the efficiency constraint, from its normal equations.

    Minimises ``phi' A phi - 2 phi' b`` subject to ``1' phi = total`` for every output column.

    Parameters
    ----------
    a : float[..., n, n]
        ``Z' W Z``.
    b : float[..., n, T]
        ``Z' W (y - v_empty)``.
    total : float[T]
        ``v_full - v_empty``.

    Returns
    -------
    float[..., n, T]
    """
    pinv = np.linalg.pinv(a, hermitian=True)
    ones = np.ones(a.shape[-1])
    a_inv_b = pinv @ b
    a_inv_1 = pinv @ ones
    # Lagrange multiplier: moves the unconstrained solution along A^-1 1 onto the constraint.
    slack = (a_inv_b.sum(axis=-2) - total) / a_inv_1.sum(axis=-1)[..., None]
    return a_inv_b - a_inv_1[..., :, None] * slack[..., None, :]


def approximate(
    game: Game,
    budget: int,
    tolerance: float | None = None,
    seed: int = 0,
    progress: bool = False,
    sampling: str = "leverage",
) -> AttributionResult:
    """Shapley values by paired, constrained weighted least squares.

    Parameters
    ----------
    game : Game
    budget : int
        Most distinct evaluations (minimum ``n + 2``, or ``2**n`` if smaller).
    tolerance : float, optional
        Stop once the largest bootstrap standard error is below it.
    seed : int
        Seed of the sampling and the bootstrap.
    progress : bool
        Show a progress bar over the evaluations.
    sampling : {"leverage", "kernel"}
        Size distribution of the sampled coalitions (see the module docstring). "leverage" is the
        default: in ``benchmarks/results/estimators.md`` its error is 2-6 % lower than with
        "kernel" (geometric mean over games and sizes at each budget) and 8-23 % lower at n = 64.

    Returns
    -------
    AttributionResult
        ``method="kernel"``, ``index="shapley"``; efficiency holds exactly.
    """
    if sampling not in ("kernel", "leverage"):
        raise ValueError(f"sampling must be 'kernel' or 'leverage', got {sampling!r}")
    n = game.n_players
    run = Run(game, budget, minimum=min(n + 2, 2**n), method="kernel")
    rng = np.random.default_rng(seed)
    kernel_masses = size_masses(n)
    sampling_masses = kernel_masses.copy() if sampling == "kernel" else (kernel_masses > 0) * 1.0

    with game.progress_bar(total=budget, enabled=progress):
        v_empty = with_total(game.v_empty[None])[0]
        v_full = with_total(game.v_full[None])[0]
        if n == 1:  # no coalition besides the empty and the full one: efficiency decides
            return run.finish("kernel", "shapley", (v_full - v_empty)[None], None, converged=True)
        enumerated, sampled_sizes = plan_enumeration(n, run.remaining, sampling_masses)

        # Enumerated sizes carry their exact kernel weights.
        z_enum = np.zeros((0, n), dtype=bool)
        w_enum = np.zeros(0)
        for size in enumerated:
            z_enum = np.concatenate([z_enum, coalitions_of_size(n, size)])
            w_enum = np.concatenate([w_enum, np.full(comb(n, size), kernel_masses[size] / comb(n, size))])
        y_enum = with_total(game.values(z_enum)) - v_empty
        a_enum, b_enum = _normal_equations(z_enum, w_enum, y_enum)

        if not sampled_sizes:
            phi = solve_constrained(a_enum, b_enum, v_full - v_empty)
            return run.finish("kernel", "shapley", phi, None, converged=True)

        sizes = np.array(sampled_sizes)
        probabilities = sampling_masses[sizes] / sampling_masses[sizes].sum()
        # Importance weight k(S) / p(S) of one pair member, before dividing by the number of pairs.
        pair_weight = kernel_masses[sizes] / probabilities / 2
        drawn_z: list[np.ndarray] = []
        drawn_w: list[np.ndarray] = []
        converged = False
        stderr = None
        round_size = max_round(n) if tolerance is None else max(8 * n, 64)
        while run.remaining > 0:
            z, w = _draw_pairs(game, rng, sizes, probabilities, pair_weight,
                               min(round_size, run.remaining), max_pairs=min(10 * budget, round_size))
            if not len(z):
                break
            drawn_z.append(z)
            drawn_w.append(w)
            z_all, w_all = np.concatenate(drawn_z), np.concatenate(drawn_w)
            y_all = with_total(game.values(z_all)) - v_empty
            if tolerance is not None:
                stderr, dof = _jackknife_stderr(a_enum, b_enum, z_all, w_all, y_all, v_full - v_empty)
                if stderr[:, :-1].max() < tolerance:
                    converged = True
                    break
            if len(z_all) >= 20 * budget:  # only reached when nearly everything is cached
                break

    if not drawn_z:  # the enumerated sizes used up the budget: the other sizes go unweighted
        phi = solve_constrained(a_enum, b_enum, v_full - v_empty)
        return run.finish("kernel", "shapley", phi, np.full(phi.shape, np.nan), converged=False, dof=np.inf,
                          note="the budget went to the enumerated coalition sizes: no sampled pair to measure the error")
    n_pairs = len(z_all) // 2
    a_samp, b_samp = _normal_equations(z_all, w_all / n_pairs, y_all)
    phi = solve_constrained(a_enum + a_samp, b_enum + b_samp, v_full - v_empty)
    if stderr is None:
        stderr, dof = _jackknife_stderr(a_enum, b_enum, z_all, w_all, y_all, v_full - v_empty)
    note = None
    if dof < 1:
        stderr = np.full(phi.shape, np.nan)
        note = "one sampled coalition pair only: no second unit to measure the error"
    return run.finish("kernel", "shapley", phi, stderr, converged, dof=dof, note=note)


def _normal_equations(z: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Z' W Z`` (float[n, n]) and ``Z' W y`` (float[n, T]) for rows ``z`` with weights ``w``."""
    zf = z.astype(float)
    weighted = zf * w[:, None]
    return weighted.T @ zf, weighted.T @ y


def _draw_pairs(
    game: Game,
    rng: np.random.Generator,
    sizes: np.ndarray,
    probabilities: np.ndarray,
    pair_weight: np.ndarray,
    new_budget: int,
    max_pairs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Random coalitions with their complements (rows ``2j`` and ``2j + 1``), within ``new_budget``.

    Returns
    -------
    z : bool[2 m, n]
    w : float[2 m]
        Unnormalised importance weight of each row.
    """
    n = game.n_players
    rows: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    pending: set[bytes] = set()
    n_pairs = 0
    while n_pairs < max_pairs:
        picks = rng.choice(len(sizes), size=DRAW_CHUNK, p=probabilities)
        # A uniform coalition of size s: the s players with the smallest random keys.
        ranks = np.argsort(np.argsort(rng.random((DRAW_CHUNK, n)), axis=1), axis=1)
        coalitions = ranks < sizes[picks][:, None]
        pairs = np.stack([coalitions, ~coalitions], axis=1)  # [m, 2, n]
        accepted = affordable_groups(game, pairs, pending, new_budget)
        rows.append(pairs[:accepted].reshape(-1, n))
        weights.append(np.repeat(pair_weight[picks[:accepted]], 2))
        n_pairs += accepted
        if accepted < DRAW_CHUNK:
            break
    return np.concatenate(rows), np.concatenate(weights)


def _jackknife_stderr(
    a_enum: np.ndarray,
    b_enum: np.ndarray,
    z: np.ndarray,
    w: np.ndarray,
    y: np.ndarray,
    total: np.ndarray,
) -> tuple[np.ndarray, float]:
    """Grouped delete-a-group jackknife standard error (float[n, T]) of the solution, and its degrees of freedom.

    The sampled pairs (rows ``2j``, ``2j + 1``) are independent draws; they are dealt in order into
    ``G = min(pairs, JACKKNIFE_GROUPS)`` groups, each group is left out in turn (the remaining pairs reweighted to
    their own count), and ``var = (G - 1) / G * sum_g (phi_-g - mean)**2``. ``G - 1`` degrees of freedom.
    """
    n_pairs = len(z) // 2
    n_groups = min(n_pairs, JACKKNIFE_GROUPS)
    if n_groups < 2:
        return np.full((a_enum.shape[0], y.shape[1]), np.nan), 0.0
    group_of_pair = np.arange(n_pairs) * n_groups // n_pairs
    group_of_row = np.repeat(group_of_pair, 2)
    zf = z.astype(float)
    # per-group sums of Z' W Z and Z' W y, so that leaving a group out is a subtraction
    a_groups = np.stack([(zf[group_of_row == g] * w[group_of_row == g, None]).T @ zf[group_of_row == g]
                         for g in range(n_groups)])
    b_groups = np.stack([(zf[group_of_row == g] * w[group_of_row == g, None]).T @ y[group_of_row == g]
                         for g in range(n_groups)])
    pairs_in_group = np.bincount(group_of_pair, minlength=n_groups)
    a_all, b_all = a_groups.sum(axis=0), b_groups.sum(axis=0)
    kept = (n_pairs - pairs_in_group).astype(float)
    a_left_out = a_enum + (a_all - a_groups) / kept[:, None, None]
    b_left_out = b_enum + (b_all - b_groups) / kept[:, None, None]
    estimates = solve_constrained(a_left_out, b_left_out, total)  # [G, n, T]
    deviations = estimates - estimates.mean(axis=0)
    variance = (n_groups - 1) / n_groups * (deviations**2).sum(axis=0)
    return np.sqrt(variance), float(n_groups - 1)
