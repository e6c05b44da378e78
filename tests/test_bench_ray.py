"""``sgpa bench --executor ray`` on a local Ray (two CPUs): the same results as the in-process bench."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_bench import SAMPLES, bench_args, run_cli, stripped, write_manifest

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def numbers_close(a, b) -> bool:
    """Equal structure, equal strings, numbers equal to float32 round-off (thread counts differ between runs)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(numbers_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(numbers_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True))
    return a == b


def test_ray_and_local_runs_give_the_same_records_and_resume(local_ray, tmp_path, tiny_ctc_model_dir):
    rows = [
        {"id": "slt_0001", "audio": str(SAMPLES / "slt_0001.wav"), "transcript": "please call me at 5 pm"},
        {"id": "espeak", "audio": str(SAMPLES / "espeak_f3_0000.wav"),
         "transcript": (SAMPLES / "espeak_f3_0000.txt").read_text().strip(), "answer_word": 1},
        {"id": "ghost", "audio": str(tmp_path / "ghost.wav"), "transcript": "hello"},
    ]
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    local, distributed = tmp_path / "local", tmp_path / "ray"
    args = ("--player-sets", "words,windows")
    run_cli(bench_args(manifest, local, tiny_ctc_model_dir, *args))
    result = run_cli(bench_args(manifest, distributed, tiny_ctc_model_dir, *args, "--executor", "ray",
                                "--workers", "2"))
    assert result.exit_code == 2 and "1 of 3 inputs failed: ghost" in result.stderr  # bad rows as in a local run
    by_id = {r["id"]: r for r in stripped(local / "utterances.jsonl")}
    ray_records = stripped(distributed / "utterances.jsonl")
    assert sorted(r["id"] for r in ray_records) == ["espeak", "slt_0001"]
    for record in ray_records:
        assert numbers_close(record, by_id[record["id"]]), record["id"]
    report = json.loads((distributed / "results.json").read_text())
    assert report["n_utterances"] == 2

    # a second Ray run on the same folder has nothing left to do
    lines = (distributed / "utterances.jsonl").read_text()
    run_cli(bench_args(manifest, distributed, tiny_ctc_model_dir, *args, "--executor", "ray"))
    assert (distributed / "utterances.jsonl").read_text() == lines
