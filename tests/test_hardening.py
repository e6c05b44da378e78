"""Bad input at the edges: segments JSON (schema and invariants, random documents never a traceback), budgets far
beyond the coalition space, devices and hub models that cannot be had — each one clear InputError."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sgpa
from sgpa.attribution.estimators import estimate
from sgpa.attribution.game import Game

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "slt_0001.wav"


@pytest.fixture(scope="module")
def valid_segments() -> dict:
    words = [("please", 0.16, 0.50), ("call", 0.50, 0.82), ("me", 0.82, 0.98)]
    return sgpa.Segmentation.from_word_times(SAMPLE, words).to_dict()


def load(data, tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data, allow_nan=True), encoding="utf-8")
    return sgpa.Segmentation.load(path)


def test_a_valid_segments_file_loads(valid_segments, tmp_path):
    assert load(valid_segments, tmp_path).n_words == 3


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda d: d["words"][1].update(start=0.3), "starts before the previous word ends"),
    (lambda d: d["words"][0].update(start=-0.1), "words/0/start"),
    (lambda d: d["words"][2].update(end=99.0), "outside the audio"),
    (lambda d: d["words"][0].update(start="soon"), "words/0/start"),
    (lambda d: d["words"][0].update(end=float("nan")), "not a finite number"),
    (lambda d: d["words"][0].update(token_end=10_000), "outside the grid"),
    (lambda d: d["grid"].update(owner=d["grid"]["owner"][:-1]), "owners for"),
    (lambda d: d["grid"]["owner"].__setitem__(0, 7), "neither a word nor context"),
    (lambda d: d.pop("words"), "'words' is a required property"),
])
def test_inconsistent_segments_are_one_clear_error(valid_segments, tmp_path, change, fragment):
    data = copy.deepcopy(valid_segments)
    change(data)
    with pytest.raises(sgpa.InputError, match="s.json") as error:
        load(data, tmp_path)
    assert fragment in str(error.value)


@pytest.mark.parametrize("text", ["[1, 2, 3]", "not json", "", '{"schema_version": "9.9"}', "\ufeff[]"])
def test_files_that_are_not_segments_are_one_clear_error(tmp_path, text):
    with pytest.raises(sgpa.InputError):
        load(text, tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10_000) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["words", "grid", "context", "audio", 0, 1, "start", "end", "owner",
                                      "token_start", "token_end", "duration_s", "n_tokens"]), min_size=1, max_size=3),
       value=json_values)
def test_random_corruptions_of_a_segments_file_never_give_a_traceback(valid_segments, tmp_path, path, value):
    data = copy.deepcopy(valid_segments)
    target = data
    for key in path[:-1]:
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and isinstance(key, int) and key < len(target):
            target = target[key]
    last = path[-1]
    if isinstance(target, dict) and isinstance(last, str):
        target[last] = value
    elif isinstance(target, list) and isinstance(last, int) and last < len(target):
        target[last] = value
    try:
        load(data, tmp_path)
    except sgpa.InputError:
        pass


def test_a_budget_beyond_the_coalition_space_is_the_exact_game_and_returns():
    n = 9
    weights = np.arange(1.0, n + 1)
    started = time.perf_counter()
    result = estimate(Game(lambda c: c @ weights + c[:, 0] * c[:, 1], n), "permutation", budget=10**12)
    assert result.method == "exact" and result.n_evaluations == 2**n
    assert time.perf_counter() - started < 10
    kernel = estimate(Game(lambda c: c @ weights, n), "kernel", budget=10**12)
    assert kernel.n_evaluations == 2**n


def test_a_cuda_device_without_cuda_is_one_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from sgpa.hub import check_device

    with pytest.raises(sgpa.InputError, match="no CUDA device"):
        check_device("cuda")
    with pytest.raises(sgpa.InputError, match="unknown device"):
        check_device("tpu-ish")
    check_device("cpu")


def test_a_hub_model_that_cannot_be_had_fails_fast(monkeypatch):
    from sgpa.hub import check_hub_model

    started = time.perf_counter()
    with pytest.raises(sgpa.InputError, match="sgpa-tests/no-such-model"):
        check_hub_model("sgpa-tests/no-such-model")
    assert time.perf_counter() - started < 30
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(sgpa.InputError, match="HF_HUB_OFFLINE"):
        check_hub_model("sgpa-tests/no-such-model")
