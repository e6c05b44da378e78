"""The game: cache, batching, counting, outputs and validation."""

import numpy as np
import pytest

from sgpa.attribution.game import Game, coalition_keys


class RecordingValue:
    """An additive two-output game that records every batch it is asked for."""

    def __init__(self, n_players: int):
        self.weights = np.arange(1.0, n_players + 1)
        self.batches: list[np.ndarray] = []

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        self.batches.append(coalitions.copy())
        total = coalitions @ self.weights
        return np.stack([total, total**2], axis=1)

    @property
    def rows(self) -> list[bytes]:
        return [key for batch in self.batches for key in coalition_keys(batch)]


def random_coalitions(rng, k, n):
    return rng.random((k, n)) < 0.5


def test_no_coalition_is_evaluated_twice_and_counts_are_exact():
    n = 9
    value = RecordingValue(n)
    game = Game(value, n, batch_size=16)
    rng = np.random.default_rng(0)
    first = random_coalitions(rng, 200, n)
    second = np.concatenate([first[:50], random_coalitions(rng, 100, n), first[:5]])
    out_first = game.values(first)
    out_second = game.values(second)

    distinct = {key for key in coalition_keys(np.concatenate([first, second]))}
    assert len(value.rows) == len(set(value.rows)) == len(distinct)
    assert game.n_evaluations == len(distinct)
    assert game.n_batches == len(value.batches)
    assert all(len(batch) <= 16 for batch in value.batches)
    assert game.eval_seconds > 0
    # Cached answers are the values of the right coalitions, in the order asked.
    expected = second @ value.weights
    np.testing.assert_allclose(out_second[:, 0], expected)
    np.testing.assert_allclose(out_second[:, 1], expected**2)
    np.testing.assert_allclose(out_first[:50], out_second[:50])


def test_batches_follow_batch_size():
    n = 12
    value = RecordingValue(n)
    game = Game(value, n, batch_size=64)
    coalitions = ((np.arange(150)[:, None] >> np.arange(n)) & 1).astype(bool)
    game.values(coalitions)
    assert [len(b) for b in value.batches] == [64, 64, 22]
    assert game.n_batches == 3


def test_empty_and_full_coalitions_are_evaluated_once_and_counted():
    value = RecordingValue(4)
    game = Game(value, 4)
    np.testing.assert_allclose(game.v_empty, [0.0, 0.0])
    np.testing.assert_allclose(game.v_full, [10.0, 100.0])
    game.v_empty, game.v_full
    game.values(np.array([[False] * 4, [True] * 4]))
    assert game.n_evaluations == 2
    assert game.n_outputs == 2


def test_scalar_value_function_means_one_output():
    game = Game(lambda c: c.sum(axis=1).astype(float), 3)
    out = game.values(np.array([[1, 1, 0]]))
    assert out.shape == (1, 1) and out[0, 0] == 2.0
    assert game.n_outputs == 1


def test_count_new_and_is_cached_predict_the_cost():
    game = Game(lambda c: c.sum(axis=1).astype(float), 5)
    coalitions = np.array([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=bool)
    assert game.count_new(coalitions) == 2
    game.values(coalitions[:1])
    assert game.is_cached(coalitions).tolist() == [True, True, False]
    assert game.count_new(coalitions) == 1
    before = game.n_evaluations
    game.values(coalitions)
    assert game.n_evaluations == before + 1


@pytest.mark.parametrize(
    "value_fn, coalitions, message",
    [
        (lambda c: c.sum(axis=1), np.ones((2, 4), dtype=bool), "shape"),
        (lambda c: c.sum(axis=1), np.full((2, 3), 2), "boolean"),
        (lambda c: np.ones((len(c), 2, 2)), np.ones((2, 3), dtype=bool), "returned shape"),
        (lambda c: np.full(len(c), np.nan), np.ones((2, 3), dtype=bool), "non-finite"),
    ],
)
def test_bad_coalitions_or_values_are_refused(value_fn, coalitions, message):
    game = Game(value_fn, 3)
    with pytest.raises(ValueError, match=message):
        game.values(coalitions)


def test_changing_number_of_outputs_is_refused():
    game = Game(lambda c: np.ones((len(c), 1 + int(c[0, 0]))), 2)
    game.values(np.array([[False, False]]))
    with pytest.raises(ValueError, match="outputs"):
        game.values(np.array([[True, False]]))


def test_player_names_must_match_players():
    with pytest.raises(ValueError, match="names"):
        Game(lambda c: c.sum(axis=1), 3, player_names=["a", "b"])
    assert Game(lambda c: c.sum(axis=1), 2, player_names=["a", "b"]).player_names == ["a", "b"]


def test_progress_bar_counts_evaluations(capsys):
    game = Game(lambda c: c.sum(axis=1).astype(float), 6, batch_size=8, progress=True)
    with game.progress_bar(total=64):
        game.values(((np.arange(64)[:, None] >> np.arange(6)) & 1).astype(bool))
    err = capsys.readouterr().err
    assert "64/64" in err and "eval" in err


def test_on_progress_reports_every_model_call_against_the_estimators_plan():
    from sgpa.attribution.estimators import estimate

    n = 6
    reports: list[tuple[int, int | None]] = []
    game = Game(RecordingValue(n), n, batch_size=8, on_progress=lambda done, planned: reports.append((done, planned)))
    estimate(game, method="exact")
    assert len(reports) == game.n_batches  # one report per model call
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == game.n_evaluations == 2**n
    assert all(planned == 2**n for _, planned in reports if planned is not None)
    assert reports[-1][1] == 2**n  # the last call is counted against the full plan


def test_an_exception_from_on_progress_stops_the_estimator():
    from sgpa.attribution.estimators import estimate

    class Stop(Exception):
        pass

    def stop_after_two_calls(done: int, planned: int | None) -> None:
        if done >= 16:
            raise Stop

    game = Game(RecordingValue(8), 8, batch_size=8, on_progress=stop_after_two_calls)
    with pytest.raises(Stop):
        estimate(game, method="permutation", budget=400, seed=0)
    assert game.n_evaluations == 16
