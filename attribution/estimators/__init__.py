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

from dataclasses import replace

import numpy as np

from sgpa.attribution.estimators import baselines, exact, permutation, regression
from sgpa.attribution.estimators.result import AttributionResult
from sgpa.attribution.game import Game
from sgpa.errors import InputError

METHODS = ("auto", "exact", "permutation", "kernel", "loo", "banzhaf")
EXACT_MAX_PLAYERS = 12
#: Evaluations per player from which "auto" prefers each sampler (a budget of 2**n is enumerated): read off the
#: side-by-side table in benchmarks/results/estimators.md (see :func:`auto_method`).
AUTO_TABLE = ((0.0, "permutation"), (3.0, "kernel"), (4.0, "permutation"), (6.0, "kernel"))


def default_budget(n_players: int) -> int:
    """``2**n`` (exact) up to 12 players, else ``20 n``."""
    return 2**n_players if n_players <= EXACT_MAX_PLAYERS else 20 * n_players


def auto_method(n_players: int, budget: int) -> str:
    """The estimator "auto" runs: exact if affordable, else the sampler most accurate at this budget.

    Measured side by side (``benchmarks/results/estimators.md``: audio-shaped, saturating and random games at
    n = 8 to 64 and three real CTC games, 10 seeds each; geometric mean over the 15 settings of the mean relative
    error), :data:`AUTO_TABLE`: antithetic permutations below 3 evaluations per player (one pair; the regression is
    not determined there: 116 % against 13.1 % at 2 n), the regression at 3 n (sizes 1 and n - 1 enumerated: 10.5 %
    against 13.1 %), antithetic permutations again at 4 n (9.5 % against 10.1 %: the few pairs sampled beyond those
    sizes add more noise than they remove), and the regression from 6 n on (6.6 % against 7.7 % at 6 n, 4.2 % against
    5.7 % at 10 n, and further ahead at every larger budget, where its screened interaction terms enter).
    """
    return auto_choice(n_players, budget)[0]


def auto_choice(n_players: int, budget: int) -> tuple[str, str]:
    """:func:`auto_method`'s pick and the reason, in words, that the result carries."""
    n = n_players
    if budget >= 2**n:
        return "exact", f"the budget ({budget}) pays for all 2**{n} = {2**n} coalitions"
    per_player = budget / n
    start, method = max((row for row in AUTO_TABLE if row[0] <= per_player), key=lambda row: row[0])
    ends = [row[0] for row in AUTO_TABLE if row[0] > start]
    where = f"from {start:g}" if not ends else f"from {start:g} to {min(ends):g}" if start else f"below {min(ends):g}"
    name = {"permutation": "antithetic permutations", "kernel": "the paired regression"}[method]
    return method, (f"{per_player:.1f} evaluations per player; {where} per player {name} had the lower error "
                    "(benchmarks/results/estimators.md)")


def check_options(method: str, tolerance: float | None, seed: int) -> None:
    """``InputError`` unless the method is known, the tolerance finite and positive, the seed a whole number >= 0
    (callers check these before loading a model; :func:`estimate` checks them again)."""
    if method not in METHODS:
        raise InputError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    is_number = isinstance(tolerance, (int, float, np.floating)) and not isinstance(tolerance, bool)
    if tolerance is not None and not (is_number and np.isfinite(tolerance) and tolerance > 0):
        raise InputError(f"tolerance must be a positive finite number, got {tolerance}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative whole number, got {seed}")


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
    check_options(method, tolerance, seed)
    if game.null_players.any():
        return _with_null_players(game, method, budget, tolerance, seed, progress)
    n = game.n_players
    if budget is None:
        # Naming a method without a budget gets what that method needs for its full answer.
        budget = {"exact": 2**n, "loo": n + 2}.get(method, default_budget(n))
    budget = int(budget)
    reason = None
    if method == "auto":
        method, reason = auto_choice(n, budget)
    result = _estimate(game, method, budget, tolerance, seed, progress)
    return result if reason is None else replace(result, method_reason=reason)


def _estimate(
    game: Game, method: str, budget: int, tolerance: float | None, seed: int, progress: bool
) -> AttributionResult:
    n = game.n_players
    if method == "permutation" and budget >= 2**n:
        # A budget that pays for every coalition is the exact game: enumerating it is exact and cheaper than
        # sampling until the cache holds everything (which, with a budget of 10**12, would never end).
        method = "exact"
    budget = min(budget, 2**n) if method in ("kernel", "banzhaf", "exact") else budget
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


def _with_null_players(
    game: Game, method: str, budget: int | None, tolerance: float | None, seed: int, progress: bool
) -> AttributionResult:
    """Estimate the game of the players that are not null, and give every null player exactly zero.

    A null player changes no input, so it changes no value: its Shapley (and Banzhaf, and leave-one-out) value is
    zero, and the others' values are those of the game without it. A sampled estimator run on the whole game would
    instead spread sampling noise onto it. The budget is the same: coalitions that differ only in null players are
    one evaluation.
    """
    keep = ~game.null_players
    n = game.n_players
    if not keep.any():  # nothing can change the input: every value is v(N) = v(empty)
        v_full = game.v_full
        zeros = np.zeros((n, len(v_full)))
        return AttributionResult(
            method="exact" if method == "auto" else method, index={"loo": "loo", "banzhaf": "banzhaf"}.get(method, "shapley"),
            phi=zeros, stderr=None, v_empty=game.v_empty, v_full=v_full, efficiency_gap=np.zeros(len(v_full)),
            n_evaluations=game.n_evaluations, n_batches=game.n_batches, eval_seconds=game.eval_seconds,
            wall_seconds=0.0, budget=int(budget or 1), converged=True, player_names=game.player_names,
        )
    reduced = estimate(game.without_null_players(), method, budget, tolerance, seed, progress)

    def expand(values: np.ndarray | None) -> np.ndarray | None:
        if values is None:
            return None
        full = np.zeros((n, *values.shape[1:]))
        full[keep] = values
        return full

    return replace(
        reduced, phi=expand(reduced.phi), stderr=expand(reduced.stderr), stderr_total=expand(reduced.stderr_total),
        player_names=game.player_names,
    )


__all__ = ["AttributionResult", "Game", "METHODS", "auto_choice", "auto_method", "default_budget", "estimate"]
