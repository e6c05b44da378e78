"""The shipped data samples are consistent: audio, transcript, times and manifest agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
ROWS = [json.loads(line) for line in (SAMPLES / "manifest.jsonl").read_text().splitlines()]


def test_the_required_samples_are_there():
    ids = {row["id"] for row in ROWS}
    assert {"slt_0000", "slt_0001", "librivox_0000"} <= ids
    by_id = {row["id"]: row for row in ROWS}
    assert by_id["slt_0000"]["voice"] == "cmu_us_slt_arctic_hts" and by_id["slt_0000"]["split"] == "heldout"
    assert any(any(w.isdigit() for w in row["text"].split()) for row in ROWS)
    assert len({row["voice"] for row in ROWS}) >= 4


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_sample_files_agree(row):
    record = json.loads((SAMPLES / row["json"]).read_text())
    transcript = (SAMPLES / row["transcript"]).read_text().strip()
    samples, rate = soundfile.read(SAMPLES / row["audio"])
    assert rate == record["sample_rate"] == 16000 and samples.ndim == 1
    assert record["duration_s"] == pytest.approx(len(samples) / rate, abs=1e-6)
    assert transcript == record["text"] == row["text"]
    assert [w["text"] for w in record["words"]] == transcript.split()
    starts = np.array([w["start"] for w in record["words"]])
    ends = np.array([w["end"] for w in record["words"]])
    assert np.all(starts < ends) and np.all(ends[:-1] <= starts[1:] + 1e-6) and ends[-1] <= record["duration_s"]
