"""Exact Shapley values by enumerating all 2**n coalitions."""

from __future__ import annotations

from math import factorial

import numpy as np

from sgpa.attribution.estimators.result import AttributionResult, Run, all_coalitions, with_total
from sgpa.attribution.game import Game


def shapley_weights(n_players: int) -> np.ndarray:
    """float[n]: weight ``s! (n - s - 1)! / n!`` of a marginal contribution to a coalition of size ``s``."""
    n = n_players
    return np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)])


def shapley_from_table(table: np.ndarray) -> np.ndarray:
    """Shapley values from the values of all coalitions.

    Parameters
    ----------
    table : float[2**n, T]
        Row ``m`` is the value of the coalition whose members are the set bits of ``m``.

    Returns
    -------
    float[n, T]
    """
    n = int(np.log2(len(table)))
    masks = np.arange(2**n, dtype=np.int64)
    sizes = all_coalitions(n).sum(axis=1)
    weights = shapley_weights(n)
    phi = np.empty((n, table.shape[1]))
    for i in range(n):
        without = masks[(masks >> i) & 1 == 0]
        marginal = table[without | (1 << i)] - table[without]
        phi[i] = weights[sizes[without]] @ marginal
    return phi


def approximate(game: Game, budget: int | None = None, progress: bool = False) -> AttributionResult:
    """Exact Shapley values from all ``2**n`` coalitions, in exactly ``2**n`` evaluations on a fresh game.

    Parameters
    ----------
    game : Game
    budget : int, optional
        Must be at least ``2**n`` (default: ``2**n``).
    progress : bool
        Show a progress bar over the evaluations.
    """
    n = game.n_players
    budget = 2**n if budget is None else budget
    run = Run(game, budget, minimum=2**n, method="exact")
    coalitions = all_coalitions(n)
    with game.progress_bar(total=game.count_new(coalitions), enabled=progress):
        table = with_total(game.values(coalitions))
    return run.finish("exact", "shapley", shapley_from_table(table), None, converged=True)
