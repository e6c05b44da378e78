"""Baselines that are *not* Shapley values: leave-one-out and the Banzhaf value.

Both are labelled by ``AttributionResult.index`` ("loo", "banzhaf") so that they are never read as
Shapley values; neither satisfies efficiency, and the gap is reported as it is.
"""

from __future__ import annotations

import numpy as np

from sgpa.attribution.estimators.result import (
    AttributionResult,
    Run,
    affordable_groups,
    all_coalitions,
    max_round,
    with_total,
)
from sgpa.attribution.game import Game

DRAW_CHUNK = 64  # coalition pairs drawn at a time


def leave_one_out(game: Game, budget: int | None = None, progress: bool = False) -> AttributionResult:
    """``phi_i = v(N) - v(N \\ {i})``: the drop when one player is removed from the full coalition.

    Costs ``n + 2`` evaluations (the empty coalition is evaluated too, to be reported).
    """
    n = game.n_players
    budget = n + 2 if budget is None else budget
    run = Run(game, budget, minimum=n + 2, method="loo")
    with game.progress_bar(total=n + 2, enabled=progress):
        game.v_empty
        v_full = with_total(game.v_full[None])[0]
        without_one = ~np.eye(n, dtype=bool)
        phi = v_full - with_total(game.values(without_one))
    return run.finish("loo", "loo", phi, None, converged=True)


def banzhaf_from_table(table: np.ndarray) -> np.ndarray:
    """float[n, T]: Banzhaf values from the values of all coalitions (row ``m`` = bits of ``m``)."""
    n = int(np.log2(len(table)))
    masks = np.arange(2**n, dtype=np.int64)
    phi = np.empty((n, table.shape[1]))
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        phi[i] = (table[without | (1 << i)] - table[without]).mean(axis=0)
    return phi


def banzhaf(
    game: Game,
    budget: int,
    tolerance: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> AttributionResult:
    """Banzhaf values: each player's marginal contribution averaged *uniformly* over coalitions.

    Exact from all ``2**n`` coalitions when the budget allows; otherwise sampled with paired
    uniform coalitions (maximum sample reuse): a pair ``(S, N \\ S)`` gives every player ``i`` the
    unbiased sample ``+-(v(S) - v(N \\ S))``, plus when ``i`` is in ``S``, minus otherwise.

    Parameters
    ----------
    game : Game
    budget : int
        Most distinct evaluations (minimum 4).
    tolerance : float, optional
        Stop once the largest standard error is below it.
    seed : int
    progress : bool
    """
    n = game.n_players
    run = Run(game, budget, minimum=min(4, 2**n), method="banzhaf")
    if budget >= 2**n:
        with game.progress_bar(total=2**n, enabled=progress):
            table = with_total(game.values(all_coalitions(n)))
        return run.finish("banzhaf", "banzhaf", banzhaf_from_table(table), None, converged=True)

    rng = np.random.default_rng(seed)
    samples: list[np.ndarray] = []  # float[m, n, T + 1] per round
    converged = False
    with game.progress_bar(total=budget, enabled=progress):
        game.v_empty, game.v_full
        round_size = max_round(n) if tolerance is None else max(8 * n, 64)
        while True:
            pairs = _draw_uniform_pairs(game, rng, min(round_size, run.remaining), 10 * budget)
            if not len(pairs):
                break
            values = with_total(game.values(pairs.reshape(-1, n))).reshape(len(pairs), 2, -1)
            signs = np.where(pairs[:, 0, :], 1.0, -1.0)  # [m, n]
            samples.append(signs[:, :, None] * (values[:, 0] - values[:, 1])[:, None, :])
            stacked = np.concatenate(samples)
            stderr = _stderr_of_mean(stacked)
            if tolerance is not None and stderr is not None and stderr[:, :-1].max() < tolerance:
                converged = True
                break
            if run.remaining <= 0 or len(stacked) >= 10 * budget:
                break
    stacked = np.concatenate(samples)
    stderr = _stderr_of_mean(stacked)
    note = None
    if stderr is None:
        stderr = np.full(stacked.shape[1:], np.nan)
        note = "one coalition pair only: no second sample to measure the error"
    return run.finish("banzhaf", "banzhaf", stacked.mean(axis=0), stderr, converged, dof=len(stacked) - 1, note=note)


def _stderr_of_mean(samples: np.ndarray) -> np.ndarray | None:
    """float[n, T]: standard error of the mean of independent ``samples`` (float[m, n, T])."""
    if len(samples) < 2:
        return None
    return np.std(samples, axis=0, ddof=1) / np.sqrt(len(samples))


def _draw_uniform_pairs(
    game: Game, rng: np.random.Generator, new_budget: int, max_pairs: int
) -> np.ndarray:
    """bool[m, 2, n]: uniform random coalitions and their complements, within ``new_budget``."""
    n = game.n_players
    chunks: list[np.ndarray] = []
    pending: set[bytes] = set()
    n_pairs = 0
    while n_pairs < max_pairs:
        coalitions = rng.random((DRAW_CHUNK, n)) < 0.5
        pairs = np.stack([coalitions, ~coalitions], axis=1)
        accepted = affordable_groups(game, pairs, pending, new_budget)
        chunks.append(pairs[:accepted])
        n_pairs += accepted
        if accepted < DRAW_CHUNK:
            break
    return np.concatenate(chunks)
