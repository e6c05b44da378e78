"""The corpus generator: files and manifest as documented, deterministic from the seed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

from sgpa.corpus import generate, sentences
from sgpa.errors import InputError

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")

VOICES = [("flite", "kal16"), ("flite", "slt")]


def _read_all(folder):
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    records = {row["id"]: json.loads((folder / row["json"]).read_text()) for row in rows}
    audio = {row["id"]: (folder / row["audio"]).read_bytes() for row in rows}
    return rows, records, audio


def test_generate_writes_wav_json_and_manifest(tmp_path):
    rows = generate.generate(tmp_path, n=4, seed=3, voices=VOICES, augment_fraction=1.0, workers=1, progress=False)
    assert len(rows) == 4
    manifest, records, _ = _read_all(tmp_path)
    assert manifest == rows
    for row in manifest:
        record = records[row["id"]]
        assert set(record) >= {"id", "text", "engine", "voice", "sample_rate", "duration_s", "words", "phones", "augmentations", "seed"}
        samples, rate = soundfile.read(tmp_path / row["audio"])
        assert rate == 16000 and samples.ndim == 1
        assert record["duration_s"] == pytest.approx(len(samples) / rate, abs=1e-6)
        assert [w["text"] for w in record["words"]] == record["text"].split() == row["text"].split()
        assert record["augmentations"]  # augment_fraction=1.0
        assert row["split"] == ("heldout" if row["voice"] == "slt" else "train")
        assert record["words"][-1]["end"] <= record["duration_s"] + 1e-6


def test_generate_is_deterministic_from_the_seed_whatever_the_workers(tmp_path):
    kwargs = dict(n=4, voices=VOICES, augment_fraction=0.5, progress=False)
    generate.generate(tmp_path / "a", seed=11, workers=1, **kwargs)
    generate.generate(tmp_path / "b", seed=11, workers=2, **kwargs)
    generate.generate(tmp_path / "c", seed=12, workers=1, **kwargs)
    rows_a, records_a, audio_a = _read_all(tmp_path / "a")
    rows_b, records_b, audio_b = _read_all(tmp_path / "b")
    rows_c, _, _ = _read_all(tmp_path / "c")
    assert rows_a == rows_b and records_a == records_b and audio_a == audio_b
    assert [r["text"] for r in rows_a] != [r["text"] for r in rows_c]


def test_voice_specs_and_bad_input():
    train, heldout = generate.all_voices()
    assert ("festival", "cmu_us_slt_arctic_hts") in heldout and ("flite", "slt") in heldout
    assert not set(train) & set(heldout)
    assert generate.parse_voices("flite:kal16,festival:kal_diphone") == [("flite", "kal16"), ("festival", "kal_diphone")]
    with pytest.raises(InputError, match="unknown voice"):
        generate.parse_voices("flite:nobody")
    with pytest.raises(InputError):
        generate.generate("/tmp/never-written", n=0)


def test_cli_exits_2_on_bad_voice(tmp_path, capsys):
    assert generate.main(["--out", str(tmp_path), "--n", "1", "--voices", "nope:x"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown voice")
    assert not (tmp_path / "manifest.jsonl").exists()


def test_sentences_are_varied_deterministic_and_use_digits():
    texts = sentences.make_sentences(300, seed=5)
    assert texts == sentences.make_sentences(300, seed=5)
    assert len(set(texts)) > 280
    words = {w for t in texts for w in t.split()}
    assert len(words) > 500
    assert any(w.isdigit() for w in words) and any(w[0].isupper() for w in words)
    assert all(w.replace("'", "").isalnum() for w in words)


def test_spoken_words_spell_numbers():
    assert sentences.spoken_words("5") == ["five"]
    assert sentences.spoken_words("25") == ["twenty", "five"]
    assert sentences.spoken_words("1984") == ["nineteen", "eighty", "four"]
    assert sentences.spoken_words("Boston") == ["boston"]


def test_voice_conversion_is_recorded_first_and_leaves_the_other_draws_unchanged(tmp_path):
    kwargs = dict(n=6, seed=5, voices=[("flite", "kal16")], augment_fraction=0.5, workers=1, progress=False)
    generate.generate(tmp_path / "plain", **kwargs)
    generate.generate(tmp_path / "converted", voice_fraction=1.0, **kwargs)
    _, plain, _ = _read_all(tmp_path / "plain")
    _, converted, _ = _read_all(tmp_path / "converted")
    for utt_id, record in converted.items():
        assert record["augmentations"][0]["type"] == "voice"
        assert record["augmentations"][1:] == plain[utt_id]["augmentations"]
        assert record["text"] == plain[utt_id]["text"] and record["words"] == plain[utt_id]["words"]
    with pytest.raises(InputError, match="--voice-conversion"):
        generate.generate(tmp_path / "bad", voice_fraction=1.5, **kwargs)
