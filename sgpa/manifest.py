"""Manifests: many inputs in one file, for ``sgpa align`` (and every command that takes a dataset).

A JSONL file (one object per line) or a CSV file (with a header) names each input's audio (``audio``, ``path``,
``audio_path`` or ``file``) and its transcript (``transcript`` or ``text``, or ``transcript_file``). Relative paths
are relative to the manifest's folder. Every other field of a row is kept in :attr:`ManifestEntry.fields`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from sgpa.errors import InputError

_AUDIO_KEYS = ("audio", "path", "audio_path", "file")
_TEXT_KEYS = ("text", "transcript")


@dataclass
class ManifestEntry:
    """One input: an audio file and where its transcript comes from (text, or a file to read)."""

    audio: Path
    transcript: str | None = None
    transcript_file: Path | None = None
    fields: dict = field(default_factory=dict)

    def read_transcript(self) -> str:
        if self.transcript is not None:
            return self.transcript
        if self.transcript_file is None or not self.transcript_file.is_file():
            raise InputError(f"no transcript: give --transcript, --transcript-file or a {self.audio.stem}.txt file")
        try:
            return self.transcript_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read the transcript {self.transcript_file}: {error}") from None


def _pick(row: dict, keys: tuple[str, ...], what: str, where: str) -> str:
    for key in keys:
        if row.get(key) not in (None, ""):
            return str(row[key])
    raise InputError(f"{where}: no {what} field (expected one of {', '.join(keys)})")


def read_manifest(path: Path) -> list[ManifestEntry]:
    """Jobs from a JSONL (one object per line) or CSV (with a header) manifest of audio + transcript.

    Relative audio paths are relative to the manifest's folder.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file")
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[str, dict]] = []
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            rows.append((f"{path}:{number}", row))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: not a JSON object ({error.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            rows.append((f"{path}:{number}", row))
    jobs = []
    for where, row in rows:
        audio = Path(_pick(row, _AUDIO_KEYS, "audio path", where))
        audio = audio if audio.is_absolute() else path.parent / audio
        if row.get("transcript_file"):
            jobs.append(ManifestEntry(audio=audio, transcript_file=path.parent / str(row["transcript_file"]), fields=row))
            continue
        transcript = _pick(row, _TEXT_KEYS, "transcript", where)
        named_file = path.parent / transcript
        if transcript.endswith(".txt") and " " not in transcript and named_file.is_file():
            # data_samples/manifest.jsonl style: "transcript" names a text file beside the manifest
            jobs.append(ManifestEntry(audio=audio, transcript_file=named_file, fields=row))
        else:
            jobs.append(ManifestEntry(audio=audio, transcript=transcript, fields=row))
    if not jobs:
        raise InputError(f"{path}: the manifest lists no inputs")
    return jobs
