"""Pauses are context, not words: a long quiet stretch between two words becomes a pause span that no word
absorbs, present in every coalition; short gaps stay inside the words (constructed audio, real TTS speech)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from conftest import tone
from sgpa.merge import build_word_segments, context_spans
from sgpa.refine import find_pauses
from sgpa.text import NormalizedWord
from sgpa.tokens import map_to_tokens, resolve_grid
from sgpa.word_spans import RawWordSpan

RATE = 16000


def words_and_silence(spans_s, duration_s):
    audio = np.zeros(int(duration_s * RATE), dtype=np.float32)
    for start, end in spans_s:
        piece = tone(end - start)
        audio[int(start * RATE) : int(start * RATE) + len(piece)] = piece
    return audio


def test_a_two_second_pause_is_found_and_a_short_gap_is_not():
    spans = [(0.2, 0.6), (0.7, 1.1), (3.1, 3.5)]  # 100 ms gap, then a 2 s pause
    audio = words_and_silence(spans, 4.0)
    pauses = find_pauses(audio, RATE, spans)
    assert list(pauses) == [2]
    start, end = pauses[2]
    assert start == pytest.approx(1.1, abs=0.03) and end == pytest.approx(3.1, abs=0.03)


def test_a_pause_becomes_context_and_both_words_keep_their_extent():
    words = [NormalizedWord(text=w, spoken=w, normalized=w.upper(), n_unspellable=0) for w in ("hello", "there")]
    raw = [RawWordSpan(0.2, 0.6, 0.9), RawWordSpan(2.6, 3.0, 0.9)]
    cuts = np.array([0.2, 1.6, 3.0])  # stage 1 would cut in the middle of the pause
    segments = build_word_segments(words, raw, cuts, np.zeros(3, dtype=bool), {1: (0.62, 2.58)})
    assert (segments[0].start, segments[0].end) == (0.2, 0.62)
    assert (segments[1].start, segments[1].end) == (2.58, 3.0)
    context = context_spans(segments, 3.5)
    assert [(c.kind, c.start, c.end) for c in context] == [("leading", 0.0, 0.2), ("pause", 0.62, 2.58),
                                                           ("trailing", 3.0, 3.5)]
    grid = map_to_tokens(segments, context, 3.5, resolve_grid("lfm2-audio"))
    pause = context[1]
    assert pause.token_end - pause.token_start >= 23  # ~1.96 s of 80 ms tokens, all context
    assert set(grid.owner[pause.token_start : pause.token_end]) == {-1}
    assert grid.owner[segments[0].token_start] == 0 and grid.owner[segments[1].token_start] == 1


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_the_shipped_model_puts_a_real_pause_into_context(tmp_path):
    import sgpa

    pieces = []
    for text in ("please open", "the window"):
        path = tmp_path / "piece.wav"
        subprocess.run(["flite", "-voice", "kal16", "-t", text, "-o", str(path)], check=True, capture_output=True)
        samples, rate = soundfile.read(path, dtype="float32")
        pieces.append(samples)
    silence = np.zeros(2 * rate, dtype=np.float32)
    wav = tmp_path / "paused.wav"
    soundfile.write(wav, np.concatenate([pieces[0], silence, pieces[1]]), rate)
    seg = sgpa.align(wav, "please open uh the window")  # a filler the speaker did not say still stays a word
    assert [w.text for w in seg.words] == ["please", "open", "uh", "the", "window"]
    pauses = [c for c in seg.context if c.kind == "pause"]
    assert pauses, [(w.text, w.start, w.end) for w in seg.words]
    longest = max(pauses, key=lambda c: c.end - c.start)
    assert longest.end - longest.start > 1.0
    assert all(w.end <= longest.start + 1e-9 or w.start >= longest.end - 1e-9 for w in seg.words)
    assert sgpa.Segmentation.from_checked_dict(seg.to_dict()).context == seg.context  # schema-valid

    plain = sgpa.align(wav, "please open uh the window", min_pause_s=0)
    assert [c.kind for c in plain.context] == ["leading", "trailing"] or [c.kind for c in plain.context] in (
        ["leading"], ["trailing"], [])


def test_silero_finds_the_speech_offline_and_drives_the_gate_and_pauses():
    from pathlib import Path

    import sgpa
    from sgpa.audio import load_audio
    from sgpa.vad import quiet_frames

    sample = Path(__file__).resolve().parents[1] / "data_samples" / "slt_0001.wav"
    speech, _ = load_audio(sample)
    audio = np.concatenate([np.zeros(RATE, dtype=np.float32), speech])  # one second of silence first
    quiet = quiet_frames(audio, RATE, "silero")
    first_second = quiet[: int(1.0 / 0.005)]
    assert first_second.mean() > 0.9 and not quiet.all()
    seg = sgpa.align(audio, "please call me at 5 pm", sample_rate=RATE, speech_detector="silero")
    assert seg.parameters["speech_detector"] == "silero" and seg.words[0].start > 0.9
    with pytest.raises(sgpa.InputError, match="speech_detector"):
        sgpa.AlignConfig(speech_detector="psychic").validate()


def test_words_the_model_cannot_place_are_flagged_and_a_mostly_unsure_utterance_warns(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    import sgpa
    from sgpa.cli.align import align

    sample = Path(__file__).resolve().parents[1] / "data_samples" / "slt_0001.wav"
    good = sgpa.align(sample, "please call me at 5 pm")
    assert good.quality.warnings == [] and good.quality.low_confidence_words == sum(
        "low_confidence" in w.flags for w in good.words)
    wrong = "the quick brown fox jumps over the lazy dog tonight"  # not what is said
    bad = sgpa.align(sample, wrong)
    assert bad.quality.warnings and "most words could not be placed" in bad.quality.warnings[0]
    assert bad.quality.low_confidence_words >= 1
    result = CliRunner().invoke(align, [str(sample), "-t", wrong, "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0  # a warning, not an error: the segments are written
    assert result.stderr.startswith("sgpa: warning: ") and "could not be placed" in result.stderr
    assert sgpa.Segmentation.load(tmp_path / "slt_0001.segments.json").quality.warnings == bad.quality.warnings
