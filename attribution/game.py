"""A cooperative game over players 0..n-1, evaluated in batches, cached and counted.

The value of a coalition is whatever the caller's ``value_fn`` says: for SGPA, the teacher-forced
log-probabilities of the reference response (one per response token, ``T`` outputs) with the absent
words masked. Evaluating ``value_fn`` is the expensive part of an explanation, so :class:`Game`

* never sends the same coalition twice (a cache keyed by the coalition's bits),
* sends coalitions in batches of at most ``batch_size``,
* counts what it sent: distinct coalitions (``n_evaluations``), calls (``n_batches``) and the seconds
  spent inside ``value_fn`` (``eval_seconds``),
* spends nothing on *null players* the caller names (a word with no audio to mask): coalitions that differ
  only in them are one coalition to the value function, so their Shapley values are exactly zero.

The empty and the full coalition are evaluated on first use of :attr:`Game.v_empty` /
:attr:`Game.v_full` and counted like any other coalition.

Examples
--------
>>> import numpy as np
>>> game = Game(lambda c: c.sum(axis=1).astype(float), n_players=3)
>>> game.values(np.array([[1, 0, 1], [1, 0, 1]], dtype=bool))
array([[2.],
       [2.]])
>>> game.n_evaluations
1
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

ValueFn = Callable[[np.ndarray], np.ndarray]


def coalition_keys(coalitions: np.ndarray) -> list[bytes]:
    """Hashable keys for the rows of a coalition matrix.

    Parameters
    ----------
    coalitions : np.ndarray, bool[k, n]

    Returns
    -------
    list of bytes, length k
        Row ``j``'s bits packed into bytes; equal rows give equal keys.
    """
    packed = np.packbits(coalitions, axis=1)
    return [row.tobytes() for row in packed]


class Game:
    """A batched, cached, counted cooperative game.

    Parameters
    ----------
    value_fn : callable
        ``value_fn(coalitions: bool[k, n]) -> float[k, T]`` (or ``float[k]``, read as ``T = 1``).
        Row ``j`` of ``coalitions`` marks the players present in coalition ``j``.
    n_players : int
        Number of players ``n`` (at least 1).
    batch_size : int
        Most coalitions sent to ``value_fn`` in one call.
    player_names : sequence of str, optional
        One name per player, carried into the results.
    progress : bool
        Show a tqdm bar counting evaluations.
    null_players : sequence of bool, optional
        Players ``value_fn`` provably ignores. Their membership is set to present before a coalition is
        cached or sent, so they cost no evaluation and every estimator gives them exactly zero.
    on_progress : callable, optional
        ``on_progress(done, planned)`` after every model call: distinct evaluations so far and the total the running
        estimator plans (``None`` when unknown). An exception it raises ends the explanation (the service cancels
        jobs this way).
    """

    def __init__(
        self,
        value_fn: ValueFn,
        n_players: int,
        batch_size: int = 64,
        player_names: Sequence[str] | None = None,
        progress: bool = False,
        null_players: Sequence[bool] | None = None,
        on_progress: Callable[[int, int | None], None] | None = None,
    ) -> None:
        if int(n_players) < 1:
            raise ValueError(f"a game needs at least one player, got n_players={n_players}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if player_names is not None and len(player_names) != n_players:
            raise ValueError(f"{len(player_names)} player names for {n_players} players")
        self.value_fn = value_fn
        self.n_players = int(n_players)
        self.batch_size = int(batch_size)
        self.player_names = list(player_names) if player_names is not None else None
        self.progress = progress
        self.null_players = np.zeros(self.n_players, dtype=bool)
        if null_players is not None:
            if len(null_players) != n_players:
                raise ValueError(f"{len(null_players)} null-player flags for {n_players} players")
            self.null_players = np.asarray(null_players, dtype=bool)
        self.n_evaluations = 0
        self.n_batches = 0
        self.eval_seconds = 0.0
        self._index: dict[bytes, int] = {}  # coalition key -> row of self._store
        self._store = np.empty((0, 0))
        self._n_outputs: int | None = None
        self.on_progress = on_progress
        self._bar = None
        self._planned: int | None = None  # evaluations the outermost running estimator plans in all
        self._estimators_running = 0

    # --- the two coalitions every explanation reports -------------------------------------------

    @property
    def v_empty(self) -> np.ndarray:
        """float[T]: value of the empty coalition (evaluated and counted on first use)."""
        return self.values(np.zeros((1, self.n_players), dtype=bool))[0]

    @property
    def v_full(self) -> np.ndarray:
        """float[T]: value of the full coalition (evaluated and counted on first use)."""
        return self.values(np.ones((1, self.n_players), dtype=bool))[0]

    @property
    def n_outputs(self) -> int:
        """Number of outputs ``T`` (evaluates the empty coalition if nothing was evaluated yet)."""
        if self._n_outputs is None:
            self.v_empty
        return self._n_outputs

    # --- cache ------------------------------------------------------------------------------------

    def keys(self, coalitions: np.ndarray) -> list[bytes]:
        """The cache key of each row of ``coalitions`` (bool[k, n]); rows differing only in null players share one."""
        return coalition_keys(self._check(coalitions))

    def is_cached(self, coalitions: np.ndarray) -> np.ndarray:
        """bool[k]: which rows of ``coalitions`` (bool[k, n]) were already evaluated."""
        coalitions = self._check(coalitions)
        return np.array([key in self._index for key in coalition_keys(coalitions)], dtype=bool)

    def count_new(self, coalitions: np.ndarray) -> int:
        """Number of distinct evaluations that ``values(coalitions)`` would cost now."""
        coalitions = self._check(coalitions)
        return len({key for key in coalition_keys(coalitions) if key not in self._index})

    def values(self, coalitions: np.ndarray) -> np.ndarray:
        """Values of coalitions, evaluating only those never seen before.

        Parameters
        ----------
        coalitions : np.ndarray, bool[k, n]

        Returns
        -------
        np.ndarray, float[k, T]
        """
        coalitions = self._check(coalitions)
        keys = coalition_keys(coalitions)
        new_rows: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self._index and key not in new_rows:
                new_rows[key] = row
        if new_rows:
            self._evaluate(coalitions[list(new_rows.values())], list(new_rows))
        return self._store[[self._index[key] for key in keys]]

    def _evaluate(self, coalitions: np.ndarray, keys: list[bytes]) -> None:
        for start in range(0, len(coalitions), self.batch_size):
            batch = coalitions[start : start + self.batch_size]
            t0 = time.perf_counter()
            out = np.asarray(self.value_fn(batch.copy()), dtype=float)
            self.eval_seconds += time.perf_counter() - t0
            out = self._check_output(out, len(batch))
            first = len(self._index)
            self._grow_store(first + len(out), out.shape[1])
            self._store[first : first + len(out)] = out
            for offset, key in enumerate(keys[start : start + self.batch_size]):
                self._index[key] = first + offset
            self.n_evaluations += len(batch)
            self.n_batches += 1
            if self._bar is not None:
                self._bar.update(len(batch))
            if self.on_progress is not None:
                planned = None if self._planned is None else max(self._planned, self.n_evaluations)
                self.on_progress(self.n_evaluations, planned)

    def _grow_store(self, n_rows: int, n_outputs: int) -> None:
        # Capacity doubles so that many small batches cost linear, not quadratic, copying.
        if n_rows <= len(self._store):
            return
        grown = np.empty((max(n_rows, 2 * len(self._store), 64), n_outputs))
        if self._index:
            grown[: len(self._index)] = self._store[: len(self._index)]
        self._store = grown

    # --- null players ------------------------------------------------------------------------------

    def without_null_players(self) -> Game:
        """The game of the other players: a coalition of them is sent to this game with every null player present.

        Its evaluations go through this game's cache and counters (so the cost of an explanation stays counted in
        one place); estimators run on it and give the null players exactly zero (see
        :func:`sgpa.attribution.estimators.estimate`).
        """
        keep = np.flatnonzero(~self.null_players)
        null = self.null_players

        def value_fn(coalitions: np.ndarray) -> np.ndarray:
            full = np.broadcast_to(null, (len(coalitions), self.n_players)).copy()
            full[:, keep] = coalitions
            return self.values(full)

        names = None if self.player_names is None else [self.player_names[i] for i in keep]
        reduced = Game(value_fn, len(keep), batch_size=self.batch_size, player_names=names)
        reduced.progress_bar = self.progress_bar  # one progress bar, over this game's evaluations
        return reduced

    # --- progress ---------------------------------------------------------------------------------

    @contextmanager
    def progress_bar(
        self, total: int | None, enabled: bool = False, desc: str = "evaluations"
    ) -> Iterator[None]:
        """Count the evaluations made inside the ``with`` block against the ``total`` an estimator plans.

        A tqdm bar is shown when ``enabled`` or when the game was made with ``progress=True``; an estimator inside
        another reuses the outer one's bar and plan. ``on_progress`` hears of the plan either way.
        """
        outermost = self._estimators_running == 0
        if outermost:
            self._planned = None if total is None else self.n_evaluations + int(total)
        show_bar = (enabled or self.progress) and self._bar is None
        if show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="eval")
        self._estimators_running += 1
        try:
            yield
        finally:
            self._estimators_running -= 1
            if show_bar:
                self._bar.close()
                self._bar = None
            if outermost:
                self._planned = None

    # --- validation -------------------------------------------------------------------------------

    def _check(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions)
        if coalitions.ndim != 2 or coalitions.shape[1] != self.n_players:
            raise ValueError(
                f"coalitions must have shape (k, {self.n_players}), got {coalitions.shape}"
            )
        if coalitions.dtype != bool:
            if not np.isin(coalitions, (0, 1)).all():
                raise ValueError("coalitions must be boolean (or 0/1) membership masks")
            coalitions = coalitions.astype(bool)
        if self.null_players.any():
            coalitions = coalitions | self.null_players  # one coalition to value_fn, whatever the null players do
        return coalitions

    def _check_output(self, out: np.ndarray, k: int) -> np.ndarray:
        if out.ndim == 1:
            out = out[:, None]
        if out.ndim != 2 or out.shape[0] != k:
            raise ValueError(f"value_fn returned shape {out.shape} for {k} coalitions; "
                             f"expected ({k},) or ({k}, T)")
        if self._n_outputs is None:
            self._n_outputs = out.shape[1]
        elif out.shape[1] != self._n_outputs:
            raise ValueError(f"value_fn returned {out.shape[1]} outputs, earlier {self._n_outputs}")
        if not np.isfinite(out).all():
            raise ValueError("value_fn returned non-finite values")
        return out
