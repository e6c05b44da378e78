"""sgpa.audio: reading, downmixing, resampling and rejecting unusable audio files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile

from conftest import tone
from sgpa.audio import load_audio, validate_waveform
from sgpa.errors import InputError


def dominant_frequency_hz(waveform: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(waveform.size, 1 / sample_rate)[np.argmax(spectrum)])


def test_mono_16k_file_is_read_unchanged_with_its_hash(tmp_path):
    waveform = tone(0.5)
    path = tmp_path / "a.wav"
    soundfile.write(path, waveform, 16000, subtype="FLOAT")
    loaded, info = load_audio(path)
    np.testing.assert_allclose(loaded, waveform, atol=1e-7)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info.sample_rate, info.original_sample_rate, info.original_channels) == (16000, 16000, 1)
    assert info.duration_s == pytest.approx(0.5)


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = tone(0.5, amplitude=0.4), tone(0.5, frequency_hz=330.0, amplitude=0.2)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    loaded, info = load_audio(path)
    np.testing.assert_allclose(loaded, (left + right) / 2, atol=1e-6)
    assert info.original_channels == 2


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k_keeping_pitch_and_duration(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.flac"
    soundfile.write(path, tone(1.0, sample_rate=rate, frequency_hz=440.0), rate)
    loaded, info = load_audio(path)
    assert loaded.dtype == np.float32
    assert loaded.size == pytest.approx(16000, abs=2)
    assert info.original_sample_rate == rate
    assert dominant_frequency_hz(loaded, 16000) == pytest.approx(440.0, abs=2.0)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such audio file"):
        load_audio(tmp_path / "absent.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage that is not audio" * 3)
    with pytest.raises(InputError, match="cannot read audio"):
        load_audio(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(InputError, match="empty"):
        load_audio(path)


def test_silence_only(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(InputError, match="silence only"):
        load_audio(path)


def test_nan_and_inf_samples(tmp_path):
    waveform = tone(0.5)
    waveform[100] = np.nan
    waveform[200] = np.inf
    path = tmp_path / "nan.wav"
    soundfile.write(path, waveform, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="2 NaN or infinite samples"):
        load_audio(path)


def test_audio_longer_than_the_limit(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, tone(3.0), 16000)
    with pytest.raises(InputError, match="more than the limit of 2 s"):
        load_audio(path, max_duration_s=2.0)
    assert load_audio(path, max_duration_s=None)[0].size == 48000


def test_validate_rejects_multichannel_arrays():
    with pytest.raises(InputError, match="mono"):
        validate_waveform(np.ones((10, 2), dtype=np.float32), 16000)
