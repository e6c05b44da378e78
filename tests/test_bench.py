"""``sgpa bench``: faithfulness and mapping on constructed games with known answers, statistics against scipy and
statsmodels, a resumed run after kill -9, and the command end to end (real audio, real CTC models)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest_lfm2 import tiny_lfm2_dir  # noqa: F401

from sgpa.attribution.bench import BenchConfig, budget_ladder, matched_accuracy, player_spans
from sgpa.attribution.bench_report import cost_ratios, holm, paired_test
from sgpa.attribution.diagnostics import cumulative_profile, diagonal_score, map_onto_words, temporal_alignment
from sgpa.attribution.estimators import estimate
from sgpa.attribution.faithfulness import aopc, deletion_curve, insertion_curve, ranking, single_word_drops
from sgpa.attribution.game import Game

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"


# --- constructed games with known answers ---------------------------------------------------------------------


def planted_value(n: int, answer: int, weight: float = 10.0):
    """The answer word holds all the value: v(S) = weight if answer in S else 0."""
    return lambda coalitions: weight * np.asarray(coalitions)[:, answer].astype(float)


def test_planted_answer_word_ranks_first_and_its_deletion_curve_is_a_step():
    n, answer = 6, 3
    value = planted_value(n, answer)
    phi = estimate(Game(value, n), "exact").phi[:, 0]
    np.testing.assert_allclose(phi, np.eye(n)[answer] * 10.0, atol=1e-12)
    order = ranking(phi)
    assert order[0] == answer
    np.testing.assert_allclose(deletion_curve(value, order), [10.0] + [0.0] * n)  # closed form: all value goes first
    np.testing.assert_allclose(insertion_curve(value, order), [0.0] + [10.0] * n)
    assert aopc(deletion_curve(value, order)) == pytest.approx(1.0)
    assert aopc(insertion_curve(value, order), "insertion") == pytest.approx(1.0)
    worst = order[::-1]  # the answer word last: the deletion curve stays up until the very end
    assert aopc(deletion_curve(value, worst)) == pytest.approx(1 / n)
    np.testing.assert_allclose(single_word_drops(value, n), np.eye(n)[answer] * 10.0)


def additive_in_time(density, edges_s: np.ndarray):
    """An additive game over time spans: a player's worth is the integral of ``density`` over its span."""
    grid = np.linspace(0, edges_s[-1], 4001)
    cumulative = np.concatenate([[0.0], np.cumsum(density(grid[1:]) * np.diff(grid))])
    worth = np.diff(np.interp(edges_s, grid, cumulative))
    return (lambda coalitions: np.asarray(coalitions, dtype=float) @ worth), worth


def test_two_player_sets_on_an_additive_game_map_onto_the_same_word_attributions():
    density = lambda t: 1.0 + np.sin(3 * t) ** 2  # noqa: E731
    word_edges = np.array([0.0, 0.3, 0.55, 0.9, 1.2])
    token_edges = np.linspace(0.0, 1.2, 16)  # 80 ms players that cut across words
    word_value, word_worth = additive_in_time(density, word_edges)
    token_value, token_worth = additive_in_time(density, token_edges)
    phi_words = estimate(Game(word_value, 4), "exact").phi[:, 0]
    phi_tokens = estimate(Game(token_value, 15), "kernel", budget=400, seed=0).phi[:, 0]  # additive: exact anyway
    np.testing.assert_allclose(phi_tokens, token_worth, atol=1e-9)
    token_spans = np.stack([token_edges[:-1], token_edges[1:]], axis=1)
    word_spans = np.stack([word_edges[:-1], word_edges[1:]], axis=1)
    # a token is split among words by time overlap: exact for a density that is flat inside each token; here the
    # split is linear, so allow the small within-token curvature error
    np.testing.assert_allclose(map_onto_words(phi_tokens, token_spans, word_spans), phi_words, rtol=0.03)
    np.testing.assert_allclose(map_onto_words(phi_words, word_spans, word_spans), phi_words)
    profile_w = cumulative_profile(phi_words, word_spans, 0.0, 1.2)
    profile_t = cumulative_profile(phi_tokens, token_spans, 0.0, 1.2)
    assert profile_w[0] == 0.0 and profile_w[-1] == pytest.approx(1.0)
    assert np.abs(profile_w - profile_t).max() < 0.03


def test_temporal_alignment_of_a_diagonal_matrix():
    phi = np.eye(8)
    grid = temporal_alignment(phi, centres_s=np.arange(8) + 0.5, start_s=0.0, end_s=8.0, k=4)
    np.testing.assert_allclose(grid, np.eye(4) / 4)
    assert np.isnan(diagonal_score(grid)) or diagonal_score(grid) > 100
    grid = temporal_alignment(np.ones((8, 8)), np.arange(8) + 0.5, 0.0, 8.0, k=4)
    assert diagonal_score(grid) == pytest.approx(1.0)


def test_matched_accuracy_on_a_game_with_interactions():
    n = 7
    rng = np.random.default_rng(0)
    weights = rng.normal(size=n)

    def value(c):
        c = np.asarray(c, dtype=float)
        return c @ weights + 2.0 * c[:, 0] * c[:, 1] * c[:, 2]

    base = Game(value, n)
    reference = {"relative_stderr": 0.0}
    exact = estimate(Game(value, n), "exact").phi[:, 0]
    config = BenchConfig(seeds=3, max_budget_per_player=8, epsilons=(0.05, 1e-9))
    result = matched_accuracy(base, exact, reference, config)
    assert result["ladder"] == budget_ladder(n, 8) and result["ladder"][0] == 2 * n
    cost = result["cost"]["auto"]
    assert cost["1e-09"] == 2**n  # nothing sampled is exact here; auto's answer at 2^n is
    assert cost["0.05"] is not None and cost["0.05"] <= 2**n
    assert result["exact_evaluations"] == 2**n
    noisy = matched_accuracy(base, exact, {"relative_stderr": 0.2}, config)
    assert noisy["cost"]["auto"]["0.05"] is None  # a reference that cannot resolve 5 % resolves nothing


def test_cost_ratios_report_lower_bounds_where_the_ladder_ran_out():
    def record(words, tokens, bound):
        return {"player_sets": {
            "words": {"matched_accuracy": {"cost": {"auto": {"0.05": words}}, "cost_lower_bound": {"auto": {}}}},
            "tokens": {"matched_accuracy": {"cost": {"auto": {"0.05": tokens}},
                                            "cost_lower_bound": {"auto": {"0.05": bound}}}},
        }}

    exact = cost_ratios([record(10, 40, None), record(20, 100, None), record(10, 30, None)], "tokens", "0.05")
    assert exact["median"] == pytest.approx(4.0) and exact["n_exact"] == 3
    mixed = cost_ratios([record(10, 40, None), record(10, None, 600), record(10, None, None)], "tokens", "0.05")
    assert mixed["median"] is None and mixed["median_lower_bound"] == pytest.approx(32.0)
    assert mixed["unresolved"] == 1 and mixed["n_lower_bounds"] == 1


def test_statistics_are_scipys_and_statsmodels():
    from scipy.stats import ttest_rel, wilcoxon
    from statsmodels.stats.multitest import multipletests

    a = np.array([0.81, 0.77, 0.92, 0.66, 0.71, 0.88, 0.79, 0.84])
    b = np.array([0.70, 0.75, 0.80, 0.69, 0.60, 0.81, 0.72, 0.70])
    test = paired_test(a, b)
    assert test["wilcoxon_p"] == pytest.approx(wilcoxon(a, b).pvalue)
    assert test["t_p"] == pytest.approx(ttest_rel(a, b).pvalue)
    d = a - b
    assert test["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    low, high = test["d_z_ci95"]
    assert low < test["d_z"] < high
    family = [{"wilcoxon_p": p} for p in (0.01, 0.04, 0.03, None)]
    holm(family)
    np.testing.assert_allclose([t["wilcoxon_p_holm"] for t in family[:3]],
                               multipletests([0.01, 0.04, 0.03], method="holm")[1])
    assert "wilcoxon_p_holm" not in family[3]


def test_player_sets_cover_what_they_promise():
    import sgpa

    seg = sgpa.Segmentation.from_word_times(SAMPLES / "slt_0001.wav",
                                            [("please", 0.16, 0.5), ("call", 0.5, 0.8), ("me", 0.8, 1.0)])
    duration = seg.audio.duration_s
    tokens = player_spans("tokens", seg, duration)
    assert len(tokens) == int(np.ceil(duration / 0.08)) and tokens[0][1] == 0.0 and tokens[-1][2] == duration
    windows = player_spans("windows", seg, duration)
    assert len(windows) == 3 and windows[-1][2] == duration
    raw = player_spans("words-raw", seg, duration)
    assert [(start, end) for _, start, end in raw] == [(w.ctc_start, w.ctc_end) for w in seg.words]


# --- the command end to end -----------------------------------------------------------------------------------


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


TWO_ROWS = [
    {"id": "slt_0001", "audio": str(SAMPLES / "slt_0001.wav"), "transcript": "please call me at 5 pm"},
    {"id": "espeak", "audio": str(SAMPLES / "espeak_f3_0000.wav"),
     "transcript": (SAMPLES / "espeak_f3_0000.txt").read_text().strip(), "answer_word": 1},
]


def bench_args(manifest: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return ["bench", "--manifest", str(manifest), "-o", str(out), "--model", str(model), "--quick", "-q",
            "--allow-outside", *extra]  # the rows name the repository's data_samples


def run_cli(args: list[str]):
    from sgpa.cli.main import _register_commands, cli

    _register_commands()
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def stripped(path: Path) -> list[dict]:
    """The utterance lines without their timings (which differ between runs)."""
    def drop(value):
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k != "seconds"}
        return value

    return [drop(json.loads(line)) for line in path.read_text().splitlines()]


def test_bench_writes_the_report_and_resumes_after_kill_9(tmp_path, tiny_ctc_model_dir, monkeypatch):
    import torch

    # one thread here and in the killed process, so that both sum in the same order and agree to the last bit
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    manifest = write_manifest(tmp_path / "m.jsonl", TWO_ROWS)
    whole = tmp_path / "whole"
    result = run_cli(bench_args(manifest, whole, tiny_ctc_model_dir, "--player-sets", "words,tokens,windows"))
    assert result.exit_code == 0, result.output
    for name in ("report.md", "results.json", "utterances.jsonl", "cost_vs_epsilon.png", "concentration.png",
                 "deletion_curves.png", "temporal_alignment.png"):
        assert (whole / name).is_file(), name
    summary = json.loads((whole / "results.json").read_text())
    assert summary["n_utterances"] == 2 and set(summary["player_sets"]) == {"words", "tokens", "windows"}
    assert "Cost at matched accuracy" in (whole / "report.md").read_text()
    espeak = [r for r in stripped(whole / "utterances.jsonl") if r["id"] == "espeak"][0]
    assert espeak["player_sets"]["words"]["faithfulness"]["answer_word_rank"] >= 1

    # a second process killed as soon as the first utterance is written, then resumed
    resumed = tmp_path / "resumed"
    command = [sys.executable, "-c", "from sgpa.cli.main import main; main()",
               *bench_args(manifest, resumed, tiny_ctc_model_dir, "--player-sets", "words,tokens,windows")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = resumed / "utterances.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (lines.is_file() and lines.read_text().count("\n") >= 1):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with open(lines, "ab") as handle:
        handle.write(b'{"id": "espeak", "half a line')  # what a kill in the middle of a write would leave
    result = run_cli(bench_args(manifest, resumed, tiny_ctc_model_dir, "--player-sets", "words,tokens,windows"))
    assert result.exit_code == 0, result.output
    assert sorted(stripped(lines), key=lambda r: r["id"]) == sorted(stripped(whole / "utterances.jsonl"),
                                                                   key=lambda r: r["id"])
    torch.set_num_threads(threads)


def test_bench_on_the_data_samples_with_the_shipped_model(tmp_path):
    out = tmp_path / "out"
    result = run_cli(["bench", "--manifest", str(SAMPLES / "manifest.jsonl"), "-o", str(out), "--quick", "-q",
                      "--limit", "1", "--player-sets", "words,words-raw"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "utterances.jsonl").read_text())
    assert record["words"] == "the old man found a small red box near the river".split()
    words = record["player_sets"]["words"]
    assert words["faithfulness"]["aopc_deletion"] > words["faithfulness"]["aopc_random"]


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("sgpa: error: ") and fragment in result.stderr, result.stderr


def test_bad_inputs_give_one_line_and_exit_2_keeping_finished_utterances(tmp_path, tiny_ctc_model_dir):
    model = str(tiny_ctc_model_dir)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    cases = {
        "missing manifest": (["--manifest", str(tmp_path / "none.jsonl")], "no such manifest"),
        "bad json": (["--manifest", str(tmp_path / "bad.jsonl")], "not a JSON object"),
        "unknown player set": (["--manifest", str(write_manifest(tmp_path / "ok.jsonl", TWO_ROWS[:1])),
                                "--player-sets", "words,phonemes"], "unknown player set"),
        "budget too small": (["--manifest", str(tmp_path / "ok.jsonl"), "--max-budget-per-player", "1"],
                             "too small"),
    }
    for name, (args, fragment) in cases.items():
        out = tmp_path / name.replace(" ", "_")
        result = run_cli(["bench", *args, "-o", str(out), "--model", model, "--quick", "-q"])
        one_line_error(result, fragment)
        assert not (out / "utterances.jsonl").exists(), name

    # a missing audio file is one failure among good rows: the good one is finished and kept
    rows = [TWO_ROWS[0], {"id": "ghost", "audio": str(tmp_path / "ghost.wav"), "transcript": "hello"}]
    out = tmp_path / "partial"
    result = run_cli(bench_args(write_manifest(tmp_path / "partial.jsonl", rows), out, tiny_ctc_model_dir,
                                "--player-sets", "words"))
    one_line_error(result, "1 of 2 inputs failed: ghost")
    assert [r["id"] for r in stripped(out / "utterances.jsonl")] == ["slt_0001"]
    assert json.loads((out / "results.json").read_text())["failures"][0]["id"] == "ghost"


def test_a_hugging_face_dataset_benches_like_the_same_manifest(tmp_path, tiny_ctc_model_dir):
    import datasets

    # a save_to_disk folder with an Audio column (8 kHz copies: the bench resamples), a corrupt row and an empty one
    import soundfile

    waveform, _ = soundfile.read(SAMPLES / "slt_0001.wav", dtype="float32")
    soundfile.write(tmp_path / "slt_0001_8k.wav", waveform[::2], 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wav file")
    data = datasets.Dataset.from_dict({
        "audio": [str(SAMPLES / "slt_0001.wav"), str(tmp_path / "slt_0001_8k.wav"), str(tmp_path / "corrupt.wav"),
                  str(SAMPLES / "slt_0000.wav")],
        "sentence": ["please call me at 5 pm", "please call me at 5 pm", "hello", ""],
        "key": ["a", "b", "c", "d"],
    }).cast_column("audio", datasets.Audio())
    data.save_to_disk(str(tmp_path / "ds"))

    from sgpa.attribution.bench import items_from_dataset

    items, failures = items_from_dataset(str(tmp_path / "ds"), text_column="sentence", id_column="key")
    assert [i.id for i in items] == ["a", "b"] and [f[0] for f in failures] == ["c", "d"]
    assert items[0].sample_rate == 16000 and items[1].sample_rate == 8000
    assert np.array_equal(items[0].audio, waveform)

    out = tmp_path / "out"
    result = run_cli(["bench", "--dataset", str(tmp_path / "ds"), "--text-column", "sentence", "--id-column", "key",
                      "-o", str(out), "--model", str(tiny_ctc_model_dir), "--quick", "-q", "--limit", "1",
                      "--player-sets", "words"])
    one_line_error(result, "inputs failed: c, d")  # the finished row is kept, the bad ones listed
    assert "c: cannot decode the audio" in result.stderr
    from_dataset = stripped(out / "utterances.jsonl")[0]
    manifest = write_manifest(tmp_path / "one.jsonl", [{"id": "a", "audio": str(SAMPLES / "slt_0001.wav"),
                                                        "transcript": "please call me at 5 pm"}])
    result = run_cli(bench_args(manifest, tmp_path / "out_manifest", tiny_ctc_model_dir, "--player-sets", "words"))
    assert result.exit_code == 0, result.output
    from_manifest = stripped(tmp_path / "out_manifest" / "utterances.jsonl")[0]
    assert from_dataset["audio"] == f"{tmp_path / 'ds'}[0]"
    assert from_dataset["player_sets"] == from_manifest["player_sets"]

    for args, fragment in ((["--text-column", "transcript"], "no column 'transcript'"),
                           (["--manifest", str(manifest)], "exactly one of --manifest and --dataset")):
        result = run_cli(["bench", "--dataset", str(tmp_path / "ds"), *args, "-o", str(tmp_path / "bad"),
                          "--model", str(tiny_ctc_model_dir), "--quick", "-q"])
        one_line_error(result, fragment)


def test_text_players_add_the_modality_views_for_a_chat_model(tmp_path, tiny_lfm2_dir, tiny_ctc_model_dir):  # noqa: F811
    rows = [{"id": "espeak", "audio": str(SAMPLES / "espeak_f3_0000.wav"),
             "transcript": (SAMPLES / "espeak_f3_0000.txt").read_text().strip(), "prompt": "Which colour was said?"}]
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    out = tmp_path / "out"
    result = run_cli(["bench", "--manifest", str(manifest), "-o", str(out), "--model", str(tiny_lfm2_dir), "--quick",
                      "-q", "--allow-outside", "--player-sets", "words", "--text-players", "--response-windows", "2"])
    assert result.exit_code == 0, result.output
    modality = json.loads((out / "utterances.jsonl").read_text())["modality"]
    assert modality["n_text_players"] == 4 and 0.0 <= modality["a_shap"] <= 1.0 and len(modality["generative"]) == 2
    assert "A-SHAP" in (out / "report.md").read_text()
    result = run_cli(bench_args(manifest, tmp_path / "ctc", tiny_ctc_model_dir, "--text-players"))
    one_line_error(result, "--text-players needs a chat model")
