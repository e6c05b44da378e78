"""Estimators of Shapley values (and two labelled baselines) over a :class:`attribution.game.Game`.

Each estimator is a function ``approximate(game, budget, ...) -> AttributionResult`` in its own
module; :func:`estimate` picks one by name.

============  ==========================================  ==========  =====================
method        module                                      index       minimum budget
============  ==========================================  ==========  =====================
exact         :mod:`.exact` (all 2**n coalitions)         shapley     2**n
permutation   :mod:`.permutation` (antithetic pairs)      shapley     2 n
kernel        :mod:`.regression` (paired, constrained)    shapley     min(n + 2, 2**n)
loo           :mod:`.baselines` (leave one out)           loo         n + 2
banzhaf       :mod:`.baselines` (exact or paired MSR)     banzhaf     min(4, 2**n)
============  ==========================================  ==========  =====================

Budgets count distinct model evaluations made by the call, the empty and full coalition included.
"""

from __future__ import annotations

from attribution.estimators import baselines, exact, permutation, regression
from attribution.estimators.result import AttributionResult
from attribution.game import Game
from sgpa.errors import InputError

METHODS = ("auto", "exact", "permutation", "kernel", "loo", "banzhaf")
EXACT_MAX_PLAYERS = 12


def default_budget(n_players: int) -> int:
    """``2**n`` (exact) up to 12 players, else ``20 n``."""
    return 2**n_players if n_players <= EXACT_MAX_PLAYERS else 20 * n_players


def estimate(
    game: Game,
    method: str = "auto",
    budget: int | None = None,
    tolerance: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> AttributionResult:
    """Attribute ``game`` with one estimator.

    Parameters
    ----------
    game : Game
    method : {"auto", "exact", "permutation", "kernel", "loo", "banzhaf"}
        "auto" is "exact" whenever ``2**n`` fits the budget, else "kernel", the paired regression
        estimator: in ``benchmarks/results/estimators.md`` it reaches a given relative error with the
        fewest evaluations of our sampled Shapley estimators on both audio-shaped and random games.
    budget : int, optional
        Most distinct evaluations (see :func:`default_budget` for None).
    tolerance : float, optional
        Sampled methods stop once the largest standard error is below it.
    seed : int
        Seed of the sampled methods.
    progress : bool
        Show a progress bar over the evaluations.

    Raises
    ------
    InputError
        Unknown method, or a budget too small for the method.
    """
    if method not in METHODS:
        raise InputError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    n = game.n_players
    budget = default_budget(n) if budget is None else int(budget)
    if tolerance is not None and not tolerance > 0:
        raise InputError(f"tolerance must be positive, got {tolerance}")
    if method == "auto":
        method = "exact" if budget >= 2**n else "kernel"
    if method == "exact":
        if budget < 2**n:
            raise InputError(
                f"exact Shapley values of {n} players need 2**{n} = {2**n} evaluations, budget is {budget}"
            )
        return exact.approximate(game, budget, progress=progress)
    if method == "permutation":
        return permutation.approximate(game, budget, tolerance, seed, progress)
    if method == "kernel":
        return regression.approximate(game, budget, tolerance, seed, progress)
    if method == "loo":
        return baselines.leave_one_out(game, budget, progress)
    return baselines.banzhaf(game, budget, tolerance, seed, progress)


__all__ = ["AttributionResult", "Game", "METHODS", "default_budget", "estimate"]
