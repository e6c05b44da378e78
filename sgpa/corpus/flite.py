"""Flite speech with exact phone times, grouped into words.

``flite -psdur`` prints every segment of the synthesised utterance with its end time in seconds.
Flite does not say which word a segment belongs to, so each spoken word's phone count is taken
from the same voice speaking the words as separate one-word sentences (a pause between each);
the utterance's non-pause segments are then dealt out to words in order. The counts are checked
to add up exactly; a sentence whose counts disagree (post-lexical rules that add or drop a phone)
is refused rather than given approximate times.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from sgpa.corpus.festival import words_from_tokens
from sgpa.corpus.sentences import spoken_words
from sgpa.corpus.utterance import TimedPhone, Utterance, load_16k
from sgpa.errors import InputError

# awb_time is a limited-domain voice (it only speaks clock times), so it is left out.
VOICES = ("kal", "kal16", "awb", "rms", "slt")
OUTPUT_SAMPLE_RATE = 16000
_PAUSES = ("pau", "h#", "sil")


def _run_flite(voice: str, text: str, wav_path: str, with_durations: bool) -> str:
    option = "-psdur" if with_durations else "-ps"
    result = subprocess.run(
        ["flite", "-voice", voice, option, "-t", text, "-o", wav_path],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def parse_segments(psdur_output: str) -> list[tuple[str, float]]:
    """``"pau:0.193 k:0.303 ..."`` -> ``[("pau", 0.193), ("k", 0.303), ...]``."""
    segments = []
    for field in psdur_output.split():
        name, _, end = field.rpartition(":")
        segments.append((name, float(end)))
    return segments


def phone_counts(voice: str, spoken: list[str]) -> list[int]:
    """Number of phones flite gives each word when it is spoken on its own."""
    # "a. b. c." makes each word its own utterance; flite prints one pause between them.
    output = _run_flite(voice, ". ".join(spoken) + ".", "none", with_durations=False)
    groups: list[int] = []
    count = 0
    for phone in output.split():
        if phone in _PAUSES:
            if count:
                groups.append(count)
            count = 0
        else:
            count += 1
    if count:
        groups.append(count)
    return groups


def group_segments(
    segments: list[tuple[str, float]], counts: list[int]
) -> tuple[list[tuple[float, float]], list[TimedPhone]] | None:
    """Deal non-pause segments out to words by count.

    Returns (per-word (start_s, end_s), phones) or ``None`` if the counts do not add up.
    """
    phones = []
    start = 0.0
    for name, end in segments:
        if name not in _PAUSES:
            phones.append(TimedPhone(name, start, end))
        start = end
    if sum(counts) != len(phones) or any(c == 0 for c in counts):
        return None
    spans = []
    position = 0
    for count in counts:
        group = phones[position : position + count]
        spans.append((group[0].start, group[-1].end))
        position += count
    return spans, phones


def synthesize(texts: list[str], voice: str = "kal16") -> list[Utterance | None]:
    """Synthesise each transcript with flite, at 16 kHz.

    Returns one :class:`Utterance` per text, or ``None`` where exact word times could not be
    established (see the module docstring).
    """

    if voice not in VOICES:
        raise InputError(f"unknown flite voice {voice!r}; choose one of {', '.join(VOICES)}")
    utterances: list[Utterance | None] = []
    with tempfile.TemporaryDirectory(prefix="sgpa-flite-") as tmp:
        wav_path = str(Path(tmp) / "out.wav")
        for text in texts:
            spoken = [s for w in text.split() for s in spoken_words(w)]
            segments = parse_segments(_run_flite(voice, " ".join(spoken), wav_path, with_durations=True))
            counts = phone_counts(voice, spoken)
            grouped = group_segments(segments, counts) if len(counts) == len(spoken) else None
            if grouped is None:
                utterances.append(None)
                continue
            spans, phones = grouped
            samples = load_16k(wav_path)
            utterances.append(
                Utterance(
                    text=text,
                    samples=samples,
                    sample_rate=OUTPUT_SAMPLE_RATE,
                    words=words_from_tokens(text.split(), spans),
                    phones=phones,
                    engine="flite",
                    voice=voice,
                )
            )
    return utterances
