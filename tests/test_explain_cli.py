"""`sgpa explain` end to end on real TTS speech with tiny real models; every bad input gets one clear line."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from conftest_lfm2 import make_segmentation, tiny_lfm2_dir  # noqa: F401

from sgpa.attribution.explanation import Explanation

REPO = Path(__file__).resolve().parents[1]
TEXT = "please open the window"


@pytest.fixture(scope="module")
def cli():
    from sgpa.cli.main import _register_commands
    from sgpa.cli.main import cli as group

    _register_commands()
    return group


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """(wav path, word times): a shipped data sample when there is one with exact times, else flite speech."""
    import json

    for wav in sorted((REPO / "data_samples").glob("*.wav")):
        times_file = wav.with_suffix(".json")
        if times_file.is_file():
            data = json.loads(times_file.read_text())
            words = data.get("words") if isinstance(data, dict) else None
            if words and all({"text", "start", "end"} <= set(w) for w in words) and len(words) <= 6:
                return wav, [(w["text"], float(w["start"]), float(w["end"])) for w in words]
    if shutil.which("flite") is None:
        pytest.skip("no data sample with word times and no flite to synthesise one")
    from sgpa.corpus.flite import synthesize

    (utterance,) = synthesize([TEXT], voice="kal16")
    path = tmp_path_factory.mktemp("speech") / "please.wav"
    soundfile.write(path, utterance.samples, utterance.sample_rate)
    return path, [(w.text, w.start, w.end) for w in utterance.words]


def segments_file(wav: Path, times, directory: Path, token_duration_s: float = 0.08) -> Path:
    from sgpa.audio import load_audio

    samples, info = load_audio(wav)
    segmentation = make_segmentation(times, info.duration_s, token_duration_s=token_duration_s)
    segmentation.audio = info
    path = directory / f"{wav.stem}.segments.json"
    path.write_text(segmentation.to_json())
    return path


def run(cli, args):
    return CliRunner().invoke(cli, ["explain", *map(str, args)], catch_exceptions=False)


def test_lfm2_audio_explanation_json_png_and_shap(cli, speech, tiny_lfm2_dir, tmp_path):  # noqa: F811
    wav, times = speech
    segments = segments_file(wav, times, tmp_path)
    out = tmp_path / "out"
    result = run(cli, [wav, "--segments", segments, "--model", tiny_lfm2_dir, "--max-new-tokens", 4,
                       "--prompt", "What does the speaker want?", "-o", out, "--shap", "-q"])
    assert result.exit_code == 0, result.output
    explanation = Explanation.load(out / f"{wav.stem}.explanation.json")
    n = len(times)
    assert explanation.model["backend"] == "lfm2-audio"
    assert explanation.model["revision"].startswith("sha256:")  # local weights are identified by content
    assert explanation.prompt == "What does the speaker want?"
    assert [p.name for p in explanation.players] == [w for w, _, _ in times]
    assert explanation.method == "exact" and explanation.index == "shapley" and explanation.stderr is None
    assert explanation.cost.n_evaluations == 2**n
    assert explanation.phi.shape == (n, len(explanation.response["tokens"]))
    assert explanation.efficiency_gap_total < 1e-6
    assert explanation.parameters["masking"] == "encoder-input"  # the LFM2-Audio default
    cost = explanation.details["evaluation_cost"]
    assert cost["n_word_players"] == n and cost["log10_reduction"] > 0  # fewer words than 80 ms tokens
    assert 0.0 <= explanation.details["concentration"]["top1_mass"] <= 1.0
    assert (out / f"{wav.stem}.explanation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / f"{wav.stem}.shap.pkl", "rb") as handle:
        shap_explanation = pickle.load(handle)
    np.testing.assert_allclose(
        shap_explanation.values.sum() + shap_explanation.base_values, explanation.v_full_total, atol=1e-6
    )


def test_ctc_backend_with_transcript_aligns_then_explains(cli, speech, tiny_ctc_model_dir, tmp_path):
    wav, times = speech
    result = run(cli, [wav, "--transcript", TEXT if len(times) == 4 else " ".join(w for w, _, _ in times),
                       "--model", tiny_ctc_model_dir, "--estimator", "permutation", "--budget", 80,
                       "--masking", "noise", "-o", tmp_path, "-q", "--no-plot"])
    assert result.exit_code == 0, result.output
    explanation = Explanation.load(tmp_path / f"{wav.stem}.explanation.json")
    assert explanation.model["backend"] == "ctc"
    n = explanation.n_players
    if 80 >= 2**n:  # a permutation budget that pays for every coalition is the exact game
        assert explanation.method == "exact" and explanation.cost.n_evaluations <= 2**n
    else:
        assert explanation.method == "permutation" and explanation.stderr is not None
        assert explanation.cost.n_evaluations <= 80
    # the CTC game's outputs are the words' chain-rule terms: they sum to the transcript log-likelihood
    assert explanation.response["tokens"] == [p.name for p in explanation.players]
    assert np.isfinite(explanation.v_full).all() and np.isfinite(explanation.v_empty).all()
    assert not (tmp_path / f"{wav.stem}.explanation.png").exists()


def bad_input_cases(wav: Path, segments: Path, other_segments: Path, silent: Path, model: Path):
    return {
        "no speech": ([silent, "--transcript", "hello", "--model", model], "silent"),
        "segments of other audio": ([wav, "--segments", other_segments, "--model", model], "different audio"),
        "budget too small": ([wav, "--segments", segments, "--model", model, "--estimator", "exact", "--budget", 3],
                             "budget"),
        "unknown model path": ([wav, "--segments", segments, "--model", "./no/such/model"], "unknown model"),
        "unknown masking": ([wav, "--segments", segments, "--model", model, "--masking", "blur"], "unknown masking"),
        "no transcript nor segments": ([wav, "--model", model], "exactly one of"),
        "missing audio": ([wav.with_name("missing.wav"), "--transcript", "hi"], "no such audio file"),
    }


def test_bad_inputs_give_one_line_exit_2_and_write_nothing(cli, speech, tiny_lfm2_dir, tmp_path):  # noqa: F811
    wav, times = speech
    segments = segments_file(wav, times, tmp_path)
    samples, rate = soundfile.read(wav, dtype="float32")
    other = tmp_path / "other.wav"
    soundfile.write(other, samples[::-1].copy(), rate)
    other_segments = segments_file(other, times, tmp_path)
    other_segments = other_segments.rename(tmp_path / "other-audio.segments.json")
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    for name, (args, expected) in bad_input_cases(wav, segments, other_segments, silent, tiny_lfm2_dir).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        result = CliRunner().invoke(cli, ["explain", *map(str, args), "-o", str(out), "-q"])
        assert result.exit_code == 2, (name, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("sgpa: error:"), (name, result.stderr)
        assert expected in lines[0], (name, lines[0])
        assert not out.exists() or not any(out.iterdir()), name


def test_text_players_report_the_audio_share(cli, speech, tiny_lfm2_dir, tmp_path):  # noqa: F811
    wav, times = speech
    segments = segments_file(wav, times, tmp_path)
    result = run(cli, [wav, "--segments", segments, "--model", tiny_lfm2_dir, "--max-new-tokens", 3, "--prompt",
                       "Perform ASR.", "--text-players", "--estimator", "loo", "-o", tmp_path, "-q", "--no-plot"])
    assert result.exit_code == 0, result.output
    explanation = Explanation.load(tmp_path / f"{wav.stem}.explanation.json")
    kinds = [p.kind for p in explanation.players]
    assert kinds == ["word"] * len(times) + ["text", "text"]
    assert [p.name for p in explanation.players][-2:] == ["Perform", "ASR."]
    assert explanation.index == "loo" and explanation.cost.n_evaluations == len(kinds) + 2
    assert 0.0 <= explanation.details["audio_share"] <= 1.0


def test_explanation_json_round_trip_and_schema_check(tmp_path):
    from sgpa.attribution.explanation import Cost, Player
    from sgpa.errors import InputError

    explanation = Explanation(
        audio={"path": "a.wav", "sha256": "0" * 64, "duration_s": 1.0, "sample_rate": 16000},
        transcript="hi there",
        model={"backend": "ctc", "id": "m", "revision": None},
        prompt=None,
        response={"text": "hi there", "token_ids": [-1, -1], "tokens": ["hi", "there"]},
        players=[Player(0, "hi", "word", 0.1, 0.4, 1, 5), Player(1, "there", "word", 0.4, 0.9, 5, 11)],
        method="permutation",
        index="shapley",
        phi=np.array([[1.0, 0.5], [0.25, 2.0]]),
        stderr=np.array([[0.1, 0.1], [0.2, 0.2]]),
        phi_total=np.array([1.5, 2.25]),
        stderr_total=np.array([0.15, 0.25]),
        v_empty=np.array([-5.0, -6.0]),
        v_full=np.array([-3.75, -3.5]),
        efficiency_gap=np.array([0.0, 0.0]),
        cost=Cost(10, 2, 0.5, 1.0, 10, False),
        parameters={"estimator": "permutation", "budget": 10},
    )
    path = explanation.save(tmp_path / "x.explanation.json")
    loaded = Explanation.load(path)
    assert loaded.players == explanation.players and loaded.cost == explanation.cost
    np.testing.assert_array_equal(loaded.phi, explanation.phi)
    np.testing.assert_array_equal(loaded.stderr_total, explanation.stderr_total)
    assert loaded.efficiency_gap_total == pytest.approx(0.0)
    data = loaded.to_dict()
    data["schema_version"] = "0.1"
    with pytest.raises(InputError, match="schema"):
        Explanation.from_dict(data)


def default_model_installed() -> bool:
    from sgpa.ctc import DEFAULT_MODEL_DIR

    return (DEFAULT_MODEL_DIR / "config.json").is_file()


@pytest.mark.skipif(not default_model_installed(), reason="the shipped CTC model (sgpa/models/sgpa-ctc-en) is not installed yet")
def test_data_sample_with_the_shipped_model_out_of_the_box(cli, tmp_path):
    wav = REPO / "data_samples" / "slt_0001.wav"
    transcript = wav.with_suffix(".txt").read_text().strip()
    result = run(cli, [wav, "--transcript", transcript, "-o", tmp_path, "-q"])
    assert result.exit_code == 0, result.output
    explanation = Explanation.load(tmp_path / "slt_0001.explanation.json")
    assert explanation.model["backend"] == "ctc" and explanation.method == "exact"
    assert explanation.efficiency_gap_total < 1e-6
    assert np.isfinite(explanation.phi).all()
