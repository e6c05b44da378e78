"""``sgpa align`` through click's CliRunner: outputs, batch behaviour, and one test per bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner

from sgpa.cli.align import align
from sgpa import ctc
from sgpa.segmentation import validate_segmentation_json

TEXT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture()
def run(tiny_ctc_model_dir, tmp_path):
    """Invoke ``sgpa align --model <tiny> -o <tmp>/out ...``; returns (result, output dir)."""
    out = tmp_path / "out"

    def invoke(*args: str):
        result = CliRunner().invoke(align, [*args, "--model", str(tiny_ctc_model_dir), "-o", str(out), "-q"])
        return result, out

    return invoke


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sgpa: error: "), result.stderr
    assert fragment in lines[0]


def output_files(out) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_single_file_writes_schema_valid_json_textgrid_and_plot(run, flite_speech):
    path, text = flite_speech
    result, out = run(str(path), "-t", text, "--format", "json", "--format", "textgrid", "--plot")
    assert result.exit_code == 0, result.stderr
    assert output_files(out) == ["fox.TextGrid", "fox.segments.json", "fox.segments.png"]
    data = json.loads((out / "fox.segments.json").read_text())
    validate_segmentation_json(data)
    assert [w["text"] for w in data["words"]] == text.split()
    assert data["grid"]["n_tokens"] == math.ceil(data["audio"]["duration_s"] / 0.08)
    textgrid = (out / "fox.TextGrid").read_text()
    assert 'name = "words"' in textgrid and '"jumps"' in textgrid
    assert (out / "fox.segments.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sidecar_transcript_and_custom_grid(run, flite_speech, tmp_path):
    path, text = flite_speech
    audio = tmp_path / "clip.wav"
    shutil.copy(path, audio)
    (tmp_path / "clip.txt").write_text(text + "\n")
    result, out = run(str(audio), "--token-duration-ms", "40", "--max-players", "3")
    assert result.exit_code == 0, result.stderr
    data = json.loads((out / "clip.segments.json").read_text())
    assert data["grid"]["token_duration_s"] == 0.04 and len(data["words"]) == 3


def test_batch_manifest_carries_on_past_a_bad_input_and_lists_it(run, flite_speech, tmp_path):
    path, text = flite_speech
    good_copy = tmp_path / "second.wav"
    shutil.copy(path, good_copy)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    manifest = tmp_path / "inputs.jsonl"
    shutil.copy(path, tmp_path / "fox.wav")
    rows = [{"audio": "fox.wav", "transcript": text}, {"audio": "broken.wav", "transcript": "hello"},
            {"audio": "second.wav", "transcript": text}]
    manifest.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    result, out = run("--manifest", str(manifest))
    assert result.exit_code == 2
    assert output_files(out) == ["fox.segments.json", "second.segments.json"]
    assert "broken.wav: cannot read audio" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sgpa: error: 1 of 3 inputs failed:")


def test_manifest_rows_cannot_reach_outside_its_folder_and_bad_rows_do_not_stop_the_batch(run, flite_speech, tmp_path):
    path, text = flite_speech
    folder = tmp_path / "set"
    folder.mkdir()
    shutil.copy(path, folder / "inside.wav")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy me")
    manifest = folder / "inputs.jsonl"
    rows = ['{"audio": "inside.wav", "transcript": "%s"}' % text,
            '{"audio": "../outside.wav", "transcript": "hello"}',
            '{"audio": "inside.wav", "transcript_file": "../secret.txt"}',
            '{not json', '{"transcript": "no audio field"}']
    manifest.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))  # BOM and CRLF are fine
    result, out = run("--manifest", str(manifest))
    assert result.exit_code == 2
    assert output_files(out) == ["inside.segments.json"]
    assert "do not copy me" not in (out / "inside.segments.json").read_text()
    assert result.stderr.count("outside the manifest's folder") == 2
    assert "not a JSON object" in result.stderr and "no audio path field" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sgpa: error: 4 of 5 inputs failed:")

    shutil.copy(path, tmp_path / "outside.wav")
    allowed = folder / "allowed.jsonl"
    allowed.write_text('{"audio": "../outside.wav", "transcript": "%s"}\n' % text)
    result, out = run("--manifest", str(allowed), "--allow-outside")
    assert result.exit_code == 0, result.stderr
    assert "outside.segments.json" in output_files(out)


def test_csv_manifest(run, flite_speech, tmp_path):
    path, text = flite_speech
    shutil.copy(path, tmp_path / "fox.wav")
    manifest = tmp_path / "inputs.csv"
    manifest.write_text(f"audio,transcript\nfox.wav,{text}\n")
    result, out = run("--manifest", str(manifest))
    assert result.exit_code == 0, result.stderr
    assert output_files(out) == ["fox.segments.json"]


def test_stereo_8khz_file_is_accepted(run, flite_speech, tmp_path):
    path, text = flite_speech
    mono, _ = soundfile.read(path, dtype="float32")
    stereo = tmp_path / "stereo8k.wav"
    soundfile.write(stereo, np.stack([mono[::2], mono[::2]], axis=1), 8000)
    result, out = run(str(stereo), "-t", text)
    assert result.exit_code == 0, result.stderr
    data = json.loads((out / "stereo8k.segments.json").read_text())
    assert (data["audio"]["original_sample_rate"], data["audio"]["original_channels"]) == (8000, 2)


# --- bad inputs: one clear line on stderr, exit code 2, no output file (not even a partial one) ---


def write(tmp_path, name, samples, rate=16000, subtype=None):
    path = tmp_path / name
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


def test_bad_input_unreadable_file(run, tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF" + bytes(range(200)))
    result, out = run(str(path), "-t", TEXT)
    assert_one_line_error(result, "cannot read audio")
    assert output_files(out) == []


def test_bad_input_missing_file(run, tmp_path):
    result, out = run(str(tmp_path / "nowhere.wav"), "-t", TEXT)
    assert_one_line_error(result, "no such audio file")


def test_bad_input_empty_audio(run, tmp_path):
    result, out = run(str(write(tmp_path, "empty.wav", np.zeros(0, dtype=np.float32))), "-t", TEXT)
    assert_one_line_error(result, "empty")
    assert output_files(out) == []


def test_bad_input_silence_only(run, tmp_path):
    result, out = run(str(write(tmp_path, "quiet.wav", np.zeros(32000, dtype=np.float32))), "-t", TEXT)
    assert_one_line_error(result, "silence only")
    assert output_files(out) == []


def test_bad_input_nan_samples(run, flite_speech, tmp_path):
    mono, _ = soundfile.read(flite_speech[0], dtype="float32")
    mono[1000:1010] = np.nan
    result, out = run(str(write(tmp_path, "nan.wav", mono, subtype="FLOAT")), "-t", TEXT)
    assert_one_line_error(result, "NaN or infinite")
    assert output_files(out) == []


def test_bad_input_very_long_audio(run, flite_speech):
    result, out = run(str(flite_speech[0]), "-t", TEXT, "--max-duration", "1")
    assert_one_line_error(result, "more than the limit of 1 s")
    assert output_files(out) == []


def test_bad_input_empty_transcript(run, flite_speech):
    result, out = run(str(flite_speech[0]), "-t", "  ... ")
    assert_one_line_error(result, "transcript is empty")
    assert output_files(out) == []


def test_bad_input_transcript_of_only_unspellable_symbols(run, flite_speech):
    result, out = run(str(flite_speech[0]), "-t", "☃ ♫ ☂")
    assert_one_line_error(result, "can be spelled")
    assert output_files(out) == []


def test_bad_input_transcript_far_longer_than_the_audio(run, flite_speech):
    result, out = run(str(flite_speech[0]), "-t", " ".join([TEXT] * 30))
    assert_one_line_error(result, "too short for its transcript")
    assert output_files(out) == []


def test_bad_input_missing_transcript(run, flite_speech, tmp_path):
    audio = tmp_path / "lonely.wav"
    shutil.copy(flite_speech[0], audio)
    result, out = run(str(audio))
    assert_one_line_error(result, "no transcript")


def test_bad_input_unknown_grid(run, flite_speech):
    result, _ = run(str(flite_speech[0]), "-t", TEXT, "--grid", "hubert")
    assert_one_line_error(result, "unknown token grid")


def test_bad_output_directory(tiny_ctc_model_dir, flite_speech, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        align, [str(flite_speech[0]), "-t", TEXT, "--model", str(tiny_ctc_model_dir), "-o", str(blocker / "out")]
    )
    assert_one_line_error(result, "cannot create the output directory")


def test_default_model_missing_is_a_clear_error(flite_speech, tmp_path, monkeypatch):
    from sgpa.api import clear_cache

    clear_cache()  # the default model may already be loaded and kept by an earlier test in this process
    monkeypatch.setattr(ctc, "DEFAULT_MODEL_DIR", tmp_path / "absent-model")
    result = CliRunner().invoke(align, [str(flite_speech[0]), "-t", TEXT, "-o", str(tmp_path)])
    assert_one_line_error(result, "default acoustic model is not installed")


def test_a_failed_write_leaves_no_partial_file(run, flite_speech, monkeypatch):
    from pathlib import Path

    real_write_text = Path.write_text

    def write_half_then_fail(self, data, *args, **kwargs):
        real_write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", write_half_then_fail)
    result, out = run(str(flite_speech[0]), "-t", TEXT)
    assert result.exit_code != 0
    assert output_files(out) == []  # neither the JSON nor its temporary file


def test_manifest_transcript_may_name_a_text_file(run, flite_speech, tmp_path):
    """data_samples/manifest.jsonl style: {"audio": "x.wav", "text": ..., "transcript": "x.txt"}."""
    path, text = flite_speech
    shutil.copy(path, tmp_path / "x.wav")
    (tmp_path / "x.txt").write_text(text)
    (tmp_path / "y.txt").write_text(text)
    shutil.copy(path, tmp_path / "y.wav")
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text(json.dumps({"audio": "x.wav", "transcript": "x.txt"}) + "\n"
                        + json.dumps({"audio": "y.wav", "transcript_file": "y.txt"}) + "\n")
    result, out = run("--manifest", str(manifest))
    assert result.exit_code == 0, result.stderr
    for stem in ("x", "y"):
        data = json.loads((out / f"{stem}.segments.json").read_text())
        assert data["transcript"]["raw"] == text


def test_console_command_reports_bad_input_with_exit_code_2(tiny_ctc_model_dir, tmp_path):
    """The installed ``sgpa`` entry point, in a real process: one stderr line, exit code 2."""
    import subprocess
    import sys
    from pathlib import Path

    executable = Path(sys.executable).with_name("sgpa")
    if not executable.exists():
        pytest.skip("the sgpa console script is not installed in this environment")
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    completed = subprocess.run(
        [str(executable), "align", str(silent), "-t", TEXT, "--model", str(tiny_ctc_model_dir), "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [f"sgpa: error: {silent}: the audio is silence only "
                                                     "(peak amplitude 0.0e+00 is below -60 dBFS)"]
