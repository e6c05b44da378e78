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


@pytest.mark.parametrize(("samples", "fragment"), [
    (np.full(160, 0.2, dtype=np.float32), "shorter than 100 ms"),  # 10 ms
    (np.full(16000, 0.4, dtype=np.float32), "silence only"),  # a DC offset is not sound
])
def test_audio_too_short_or_only_an_offset_is_refused(tmp_path, samples, fragment):
    import soundfile

    path = tmp_path / "x.wav"
    soundfile.write(path, samples, 16000)
    with pytest.raises(sgpa.InputError, match=fragment):
        sgpa.align(path, "hello")


def test_several_outputs_appear_together_or_not_at_all(tmp_path):
    from sgpa.io import write_together

    def broken(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_together([(tmp_path / "a.json", lambda tmp: tmp.write_text("{}")), (tmp_path / "b.png", broken)])
    assert list(tmp_path.iterdir()) == []
    written = write_together([(tmp_path / "a.json", lambda tmp: tmp.write_text("{}")),
                              (tmp_path / "b.txt", lambda tmp: tmp.write_text("b"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.txt"] and len(written) == 2


def run_sgpa(*args: str, **options):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from sgpa.cli.main import main; main()", *args],
                          capture_output=True, text=True, **options)


def test_an_output_path_that_is_a_file_is_refused_before_any_work(tmp_path):
    target = tmp_path / "taken"
    target.write_text("a file")
    for command in (["explain", str(SAMPLE), "-t", "please call me at 5 pm", "-o", str(target)],
                    ["align", str(SAMPLE), "-t", "please call me at 5 pm", "-o", str(target)]):
        result = run_sgpa(*command)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [f"sgpa: error: the output directory {target} is a file, "
                                                      "not a folder"]


@pytest.mark.parametrize(("signum", "code"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_mid_run_leaves_no_temporary_or_partial_file(tmp_path, signum, code):
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-c", "from sgpa.cli.main import main; main()", "explain",
         str(SAMPLE.with_name("slt_0000.wav")), "-t", "the old man found a small red box near the river",
         "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not out.is_dir():  # the folder exists once the inputs are checked
        time.sleep(0.05)
    time.sleep(3)  # well into loading or explaining
    process.send_signal(getattr(signal, signum))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("options", "fragment"), [
    ({"seed": -1}, "seed must be a non-negative"),
    ({"tolerance": float("inf")}, "tolerance must be a positive finite"),
    ({"tolerance": float("nan")}, "tolerance must be a positive finite"),
    ({"tolerance": -0.1}, "tolerance must be a positive finite"),
    ({"method": "shapley-ish"}, "unknown attribution method"),
])
def test_estimator_options_out_of_range_are_one_clear_error(options, fragment):
    game = Game(lambda c: c.sum(axis=1).astype(float), 4)
    with pytest.raises(sgpa.InputError, match=fragment):
        estimate(game, **{"method": "permutation", "budget": 20, **options})


finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.none())


ALIGN_FIELDS = ["grid", "token_offset_s", "padding_s", "alpha", "accept_ratio", "edge_padding_s",
                "offset_extension_s", "min_word_duration_s", "max_players", "max_duration_s", "interior_cut"]
any_value = st.one_of(finite_or_not, st.booleans(), st.text(max_size=6), st.sampled_from(["lfm2-audio", "auto"]))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(ALIGN_FIELDS), value=any_value, tolerance=any_value, seed=st.one_of(any_value,
                                                                                                 st.integers(-5, 5)))
def test_random_option_values_are_accepted_or_one_clear_error(name, value, tolerance, seed):
    from sgpa.attribution.estimators import check_options

    try:
        sgpa.AlignConfig(**{name: value}).validate()  # one option at a time: each check is reached
    except sgpa.InputError:
        pass
    try:
        check_options("permutation", tolerance, seed)
    except sgpa.InputError:
        pass
