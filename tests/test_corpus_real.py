"""Real speech sources and pocketsphinx's silver word alignment."""

from __future__ import annotations

import numpy as np
import pytest

from sgpa.corpus import real

needs_testdata = pytest.mark.skipif(not real.TESTDATA.exists(), reason="pocketsphinx-testdata not installed")
needs_asterisk = pytest.mark.skipif(not real.ASTERISK_TEXTS.exists(), reason="asterisk-core-sounds-en not installed")


@pytest.fixture(scope="module")
def aligner():
    return real.make_aligner()


def test_clean_transcript_keeps_spoken_words_only():
    assert real.clean_transcript("Please press 1, then #.") == "Please press 1 then pound"
    assert real.clean_transcript("Call-Forward on No Answer...") == "Call Forward on No Answer"
    assert real.clean_transcript("press * to toggle") == "press star to toggle"
    assert real.clean_transcript("party's 'quoted'") == "party's quoted"


@needs_asterisk
def test_asterisk_prompts_pair_wavs_with_texts():
    prompts = real.asterisk_prompts()
    assert len(prompts) > 500
    by_id = {p.id: p for p in prompts}
    assert by_id["asterisk_auth-thankyou"].text == "Thank you"
    assert all(p.path.exists() and p.text for p in prompts)
    assert not any("beep" == p.id.removeprefix("asterisk_") for p in prompts)  # "[this is a simple beep tone]"


@needs_testdata
def test_librivox_clip_aligns_word_for_word(aligner):
    clip = next(c for c in real.testdata_clips() if c.id.endswith("0880"))
    assert clip.text == "he was not an ill disposed young man"
    utt = real.load_recording(clip, aligner)
    assert utt.sample_rate == 16000 and [w.text for w in utt.words] == clip.text.split()
    starts = [w.start for w in utt.words]
    assert starts == sorted(starts) and utt.words[-1].end <= utt.duration_s + 0.01
    # Silver times are on pocketsphinx's 10 ms grid.
    assert all(abs(w.start * 100 - round(w.start * 100)) < 1e-6 for w in utt.words)


@needs_asterisk
def test_a_word_missing_from_the_dictionary_is_added_and_8k_audio_is_upsampled(aligner):
    prompt = next(p for p in real.asterisk_prompts() if p.text == "You are now unmuted")
    samples = real.load_16k(prompt.path)
    import soundfile

    assert soundfile.info(prompt.path).samplerate == 8000
    assert len(samples) == pytest.approx(2 * soundfile.info(prompt.path).frames, abs=2)
    words = real.pocketsphinx_align(samples, prompt.text, aligner)
    assert [w.text for w in words] == ["You", "are", "now", "unmuted"]
    assert words[-1].end - words[-1].start > 0.3


def test_alignment_of_a_wrong_transcript_fails_cleanly(aligner):
    silence = np.zeros(1600, dtype=np.float32)  # 0.1 s: too short for eight words
    assert real.pocketsphinx_align(silence, "one two three four five six seven eight", aligner) is None
