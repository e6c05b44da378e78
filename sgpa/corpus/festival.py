"""Festival speech with exact word and phone times.

One ``festival -b`` process synthesises a batch of sentences through a Scheme script: the voice
is loaded once (about 0.3 s), then for each sentence the waveform is saved and, for every input
token, the ``word_start`` of its first word and the ``word_end`` of its last word are printed,
followed by each Segment's end time. Times come from the very utterance structure that produced
the waveform, so they are exact up to festival's own frame rounding.

Each transcript word is fed as its spoken form (:func:`sgpa.corpus.sentences.spoken_words`), one
festival token per spoken word, so tokens map back to transcript words by position.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from sgpa.corpus.sentences import spoken_words
from sgpa.corpus.utterance import TimedPhone, TimedWord, Utterance, load_16k
from sgpa.errors import InputError

VOICES = ("cmu_us_slt_arctic_hts", "kal_diphone")
OUTPUT_SAMPLE_RATE = 16000

# Prints one line per top-level token ("T name start end") and one per segment ("S name end").
_SCHEME_HELPERS = r"""
(define (sgpa-report utt)
  (let ((tok (utt.relation.first utt 'Token)))
    (while tok
      (format t "T\t%s\t%s\t%s\n" (item.name tok)
              (item.feat tok "daughter1.word_start") (item.feat tok "daughtern.word_end"))
      (set! tok (item.next tok))))
  (let ((seg (utt.relation.first utt 'Segment)))
    (while seg
      (format t "S\t%s\t%s\n" (item.name seg) (item.feat seg "end"))
      (set! seg (item.next seg)))))
"""


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _batch_script(voice: str, spoken: list[str], wav_paths: list[Path]) -> str:
    lines = [f"(voice_{voice})", _SCHEME_HELPERS]
    for index, (text, wav_path) in enumerate(zip(spoken, wav_paths)):
        lines += [
            f'(format t "U\\t{index}\\n")',
            f"(set! utt (Utterance Text {_scheme_string(text)}))",
            "(utt.synth utt)",
            f"(utt.save.wave utt {_scheme_string(str(wav_path))} 'riff)",
            "(sgpa-report utt)",
        ]
    return "\n".join(lines) + "\n"


def _parse_report(stdout: str) -> dict[int, tuple[list[tuple[str, float, float]], list[tuple[str, float]]]]:
    """Map utterance index -> (tokens as (name, start_s, end_s), segments as (name, end_s))."""
    reports: dict[int, tuple[list, list]] = {}
    current = None
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "U":
            current = reports.setdefault(int(fields[1]), ([], []))
        elif fields[0] == "T" and current is not None:
            current[0].append((fields[1], float(fields[2]), float(fields[3])))
        elif fields[0] == "S" and current is not None:
            current[1].append((fields[1], float(fields[2])))
    return reports


def words_from_tokens(
    transcript_words: list[str], token_times: list[tuple[float, float]]
) -> list[TimedWord]:
    """Merge per-spoken-word times into per-transcript-word times.

    ``token_times`` has one (start_s, end_s) per spoken word, in the order that
    ``spoken_words`` produced them for ``transcript_words``.
    """
    words = []
    position = 0
    for word in transcript_words:
        count = len(spoken_words(word))
        span = token_times[position : position + count]
        words.append(TimedWord(word, span[0][0], span[-1][1]))
        position += count
    return words


def phones_from_segments(segments: list[tuple[str, float]]) -> list[TimedPhone]:
    """Segments (name, end_s) -> phones with start/end, pauses left out."""
    phones = []
    start = 0.0
    for name, end in segments:
        if name not in ("pau", "h#", "sil"):
            phones.append(TimedPhone(name, start, end))
        start = end
    return phones


def synthesize(texts: list[str], voice: str = "cmu_us_slt_arctic_hts") -> list[Utterance | None]:
    """Synthesise each transcript with festival, resampled to 16 kHz.

    Parameters
    ----------
    texts : list of str
        Transcripts as made by :mod:`sgpa.corpus.sentences` (space-separated words).
    voice : str
        A festival voice name without the ``voice_`` prefix.

    Returns
    -------
    list of Utterance or None
        One per text; ``None`` where festival's tokens did not match the spoken words (that
        sentence cannot be given exact per-word times and should be skipped).
    """

    if voice not in VOICES:
        raise InputError(f"unknown festival voice {voice!r}; choose one of {', '.join(VOICES)}")
    spoken = [[s for w in text.split() for s in spoken_words(w)] for text in texts]
    with tempfile.TemporaryDirectory(prefix="sgpa-festival-") as tmp:
        wav_paths = [Path(tmp) / f"{i}.wav" for i in range(len(texts))]
        script = Path(tmp) / "batch.scm"
        script.write_text(_batch_script(voice, [" ".join(s) for s in spoken], wav_paths))
        result = subprocess.run(
            ["festival", "-b", str(script)], capture_output=True, text=True, check=False
        )
        reports = _parse_report(result.stdout)
        utterances: list[Utterance | None] = []
        for index, text in enumerate(texts):
            tokens, segments = reports.get(index, ([], []))
            if not wav_paths[index].exists() or [t[0] for t in tokens] != spoken[index]:
                utterances.append(None)
                continue
            if any(end <= start for _, start, end in tokens):
                utterances.append(None)  # a token that produced no word
                continue
            samples = load_16k(wav_paths[index])
            utterances.append(
                Utterance(
                    text=text,
                    samples=samples,
                    sample_rate=OUTPUT_SAMPLE_RATE,
                    words=words_from_tokens(text.split(), [(t[1], t[2]) for t in tokens]),
                    phones=phones_from_segments(segments),
                    engine="festival",
                    voice=voice,
                )
            )
    return utterances
