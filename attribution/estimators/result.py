"""The result every estimator returns, and the bookkeeping shared by all estimators."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from sgpa.attribution.game import Game
from sgpa.errors import InputError


@dataclass
class AttributionResult:
    """Attributions of one game by one estimator.

    Attributes
    ----------
    method : str
        Estimator that produced it: "exact", "permutation", "kernel", "loo" or "banzhaf".
    index : str
        The quantity estimated: "shapley", "banzhaf" or "loo". Only "shapley" values satisfy efficiency.
    phi : float[n, T]
        Attribution of player ``i`` to output ``t``.
    stderr : float[n, T] or None
        Standard error of ``phi`` for sampled estimators; None where ``phi`` is computed exactly.
    v_empty, v_full : float[T]
        Values of the empty and the full coalition.
    efficiency_gap : float[T]
        ``|sum_i phi[i] - (v_full - v_empty)|``; zero up to rounding for Shapley estimators here.
    n_evaluations : int
        Distinct coalitions this call sent to the model (cached ones cost nothing and are not counted).
    n_batches : int
        Calls of the model's value function made by this call.
    eval_seconds : float
        Seconds spent inside the value function during this call.
    wall_seconds : float
        Seconds this call took in all.
    budget : int
        Most evaluations this call was allowed.
    converged : bool
        True when ``phi`` is exact, or when a tolerance was given and every standard error fell below it.
    player_names : list of str or None
    stderr_total : float[n] or None
        Standard error of ``phi.sum(axis=1)`` (the scalar game), kept for :meth:`total`.
    dof : float or None
        Degrees of freedom of the Student t distribution that :meth:`interval` uses with ``stderr`` (the number of
        independent sampling units minus one; ``inf`` for a normal reference); None where ``phi`` is exact.
    note : str or None
        Why ``stderr`` is NaN where a sampled result has no error estimate (a single sampling unit).
    method_reason : str or None
        Why ``method="auto"`` picked ``method`` (None where the method was named).
    """

    method: str
    index: str
    phi: np.ndarray
    stderr: np.ndarray | None
    v_empty: np.ndarray
    v_full: np.ndarray
    efficiency_gap: np.ndarray
    n_evaluations: int
    n_batches: int
    eval_seconds: float
    wall_seconds: float
    budget: int
    converged: bool
    player_names: list[str] | None = None
    stderr_total: np.ndarray | None = None
    dof: float | None = None
    note: str | None = None
    method_reason: str | None = None

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` float[n, T]: ``phi -+ t_{dof}((1 + level) / 2) * stderr``; None where ``phi`` is exact.

        The t quantile (not the normal one) keeps the coverage at few sampling units: with 4 independent
        permutation pairs the 95 % multiplier is 3.18, not 1.96.
        """
        if self.stderr is None:
            return None
        half = t_quantile(level, self.dof) * self.stderr
        return self.phi - half, self.phi + half

    def total(self) -> AttributionResult:
        """The scalar game (outputs summed), as a new result with ``T = 1``."""
        v_empty = self.v_empty.sum(keepdims=True)
        v_full = self.v_full.sum(keepdims=True)
        phi = self.phi.sum(axis=1, keepdims=True)
        stderr = None if self.stderr_total is None else self.stderr_total[:, None]
        return replace(
            self,
            phi=phi,
            stderr=stderr,
            v_empty=v_empty,
            v_full=v_full,
            efficiency_gap=efficiency_gap(phi, v_empty, v_full),
            stderr_total=None if stderr is None else stderr[:, 0],
        )


def t_quantile(level: float, dof: float | None) -> float:
    """The two-sided ``level`` quantile of Student's t with ``dof`` degrees of freedom (normal for ``inf``/None)."""
    from scipy.stats import norm, t

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if dof is None or not np.isfinite(dof):
        return float(norm.ppf((1 + level) / 2))
    return float(t.ppf((1 + level) / 2, dof)) if dof >= 1 else float("nan")


def efficiency_gap(phi: np.ndarray, v_empty: np.ndarray, v_full: np.ndarray) -> np.ndarray:
    """float[T]: ``|sum_i phi[i] - (v_full - v_empty)|`` for ``phi`` of shape [n, T]."""
    return np.abs(phi.sum(axis=0) - (v_full - v_empty))


def with_total(values: np.ndarray) -> np.ndarray:
    """Append the sum over outputs as one more output: float[k, T] -> float[k, T + 1].

    Within one call estimators are linear in the values (the regression picks its interaction terms once, on this
    summed output, and fits every column with them), so running them on the extra column gives the scalar
    game's attribution and, more to the point, its standard error (errors of the outputs are
    correlated, so they cannot be summed afterwards).
    """
    return np.concatenate([values, values.sum(axis=1, keepdims=True)], axis=1)


class Run:
    """Counts what one estimator call costs against its budget.

    Parameters
    ----------
    game : Game
    budget : int
        Most distinct evaluations this call may make, the empty and full coalition included.
    minimum : int
        Smallest budget the method can work with; a smaller one raises :class:`InputError`.
    method : str
        Name used in error messages.
    """

    def __init__(self, game: Game, budget: int, minimum: int, method: str) -> None:
        budget = int(budget)
        if budget < max(minimum, 2):
            raise InputError(
                f"budget {budget} is too small for method '{method}' with {game.n_players} players: "
                f"it needs at least {max(minimum, 2)} model evaluations"
            )
        self.game = game
        self.budget = budget
        self.start_evaluations = game.n_evaluations
        self.start_batches = game.n_batches
        self.start_seconds = game.eval_seconds
        self.start_wall = time.perf_counter()

    @property
    def used(self) -> int:
        """Distinct evaluations made since this call started."""
        return self.game.n_evaluations - self.start_evaluations

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def finish(
        self,
        method: str,
        index: str,
        phi_and_total: np.ndarray,
        stderr_and_total: np.ndarray | None,
        converged: bool,
        dof: float | None = None,
        note: str | None = None,
    ) -> AttributionResult:
        """Build the result from arrays carrying the summed output as their last column.

        ``stderr_and_total`` is None for an exact result; a sampled one without an error estimate passes NaN and a
        ``note`` saying why.
        """
        game = self.game
        phi = phi_and_total[:, :-1]
        v_empty, v_full = game.v_empty, game.v_full
        return AttributionResult(
            method=method,
            index=index,
            phi=phi,
            stderr=None if stderr_and_total is None else stderr_and_total[:, :-1],
            v_empty=v_empty,
            v_full=v_full,
            efficiency_gap=efficiency_gap(phi, v_empty, v_full),
            n_evaluations=self.used,
            n_batches=game.n_batches - self.start_batches,
            eval_seconds=game.eval_seconds - self.start_seconds,
            wall_seconds=time.perf_counter() - self.start_wall,
            budget=self.budget,
            converged=converged,
            player_names=game.player_names,
            stderr_total=None if stderr_and_total is None else stderr_and_total[:, -1],
            dof=None if stderr_and_total is None else dof,
            note=note,
        )


def max_round(n_players: int) -> int:
    """Most new evaluations a sampler draws before evaluating them: memory then grows with the evaluations made,
    not with the budget asked for (a budget of 10**12 is spent round by round, or not at all)."""
    return max(4096, 64 * n_players)


def all_coalitions(n_players: int) -> np.ndarray:
    """bool[2**n, n]: every coalition; row ``m`` holds the bits of the integer ``m`` (player i = bit i)."""
    masks = np.arange(2**n_players, dtype=np.int64)
    return ((masks[:, None] >> np.arange(n_players)) & 1).astype(bool)


def affordable_groups(game: Game, candidates: np.ndarray, pending: set[bytes], new_budget: int) -> int:
    """How many leading groups of candidate coalitions fit in a budget of new evaluations.

    Samplers draw coalitions in groups that must be evaluated together (a permutation walk and its
    reverse, a coalition and its complement). A coalition costs one evaluation unless the game
    has it cached or an earlier accepted group already contains it.

    Parameters
    ----------
    game : Game
    candidates : bool[m, g, n]
        ``m`` groups of ``g`` coalitions, in the order they were drawn.
    pending : set of bytes
        Keys of coalitions accepted earlier in this round but not yet evaluated; updated in place
        with the keys of the accepted groups.
    new_budget : int
        Most distinct new coalitions the round may hold.

    Returns
    -------
    int
        Number ``j`` of leading groups accepted (``candidates[:j]``).
    """
    m, g, n = candidates.shape
    flat = candidates.reshape(m * g, n)
    keys = game.keys(flat)
    cached = game.is_cached(flat)
    for j in range(m):
        new = {key for key, hit in zip(keys[j * g : (j + 1) * g], cached[j * g : (j + 1) * g])
               if not hit} - pending
        if len(pending) + len(new) > new_budget:
            return j
        pending |= new
    return m
