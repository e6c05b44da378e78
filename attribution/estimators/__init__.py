"""Estimators of Shapley values (and two labelled baselines) over a :class:`sgpa.attribution.game.Game`.

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

from sgpa.attribution.estimators import baselines, exact, permutation, regression
from sgpa.attribution.estimators.result import AttributionResult
from sgpa.attribution.game import Game
from sgpa.errors import InputError

METHODS = ("auto", "exact", "permutation", "kernel", "loo", "banzhaf")
EXACT_MAX_PLAYERS = 12
REGRESSION_FROM = 10  # evaluations per player from which "auto" prefers the regression


def default_budget(n_players: int) -> int:
    """``2**n`` (exact) up to 12 players, else ``20 n``."""
    return 2**n_players if n_players <= EXACT_MAX_PLAYERS else 20 * n_players


def auto_method(n_players: int, budget: int) -> str:
    """The estimator "auto" runs: exact if affordable, else the sampler most accurate at this budget.

    In ``benchmarks/results/estimators.md`` (audio-shaped and random games, n = 8 to 64, 8 seeds)
    the geometric mean over settings of the error ratio regression / permutation is 1.35 at 4 n
    evaluations, 1.09 at 6 n, 0.99 at 8 n, 0.94 at 10 n, 0.87 at 20 n and 0.84 at 40 n: antithetic
    permutation sampling below 10 evaluations per player (the regression is barely determined
    there; its error explodes at 2 n), the paired regression ("kernel") from 10 n on.
    """
    if budget >= 2**n_players:
        return "exact"
    if budget < REGRESSION_FROM * n_players:
        return "permutation"
    return "kernel"


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
        "auto" is "exact" whenever ``2**n`` fits the budget, else the sampler that the benchmark
        found most accurate at that budget (see :func:`auto_method`).
    budget : int, optional
        Most distinct evaluations. None: ``2**n`` for "exact", ``n + 2`` for "loo", otherwise
        :func:`default_budget` (``2**n`` up to 12 players, else ``20 n``).
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
    if budget is None:
        # Naming a method without a budget gets what that method needs for its full answer.
        budget = {"exact": 2**n, "loo": n + 2}.get(method, default_budget(n))
    budget = int(budget)
    if tolerance is not None and not tolerance > 0:
        raise InputError(f"tolerance must be positive, got {tolerance}")
    if method == "auto":
        method = auto_method(n, budget)
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


__all__ = ["AttributionResult", "Game", "METHODS", "auto_method", "default_budget", "estimate"]
