"""The Segmentation: SGPA's output, the players of the Shapley game.

Plain dataclasses plus JSON round-trip. Times are seconds (float); token indices count on the
target encoder grid described by :class:`TokenGrid`. Spans are half-open: ``[start, end)`` and
``[token_start, token_end)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0"


@dataclass
class AudioInfo:
    """The audio a segmentation was computed on (after downmix and resampling)."""

    path: str
    sha256: str
    sample_rate: int
    duration_s: float
    original_sample_rate: int
    original_channels: int


@dataclass
class TranscriptInfo:
    raw: str
    normalized: str


@dataclass
class ModelInfo:
    """The CTC acoustic model used for stage 1."""

    id: str
    revision: str | None
    frame_duration_s: float


@dataclass
class WordSegment:
    """One transcript word: a player of the game.

    ``start``/``end`` are the final (refined) cut points; ``ctc_start``/``ctc_end`` are the raw
    extent of the word's characters on the CTC Viterbi path. ``flags`` records anything a user
    should know, e.g. ``"interpolated"`` (the word could not be spelled by the acoustic model and
    its span was interpolated) or ``"merged"`` (a phrase made of several words).
    """

    index: int
    text: str
    normalized: str
    start: float
    end: float
    ctc_start: float
    ctc_end: float
    start_refined: bool
    end_refined: bool
    confidence: float
    token_start: int = 0
    token_end: int = 0
    flags: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    @property
    def n_tokens(self) -> int:
        return self.token_end - self.token_start


@dataclass
class ContextSpan:
    """Non-speech outside the words: ``kind`` is ``"leading"``, ``"pause"`` (between two words) or ``"trailing"``."""

    kind: str
    start: float
    end: float
    token_start: int = 0
    token_end: int = 0


@dataclass
class TokenGrid:
    """The target model's audio-token grid and who owns each token.

    Token ``t`` covers ``[offset_s + t * token_duration_s, offset_s + (t + 1) * token_duration_s)``.
    ``owner[t]`` is a word index, or ``-1`` for context (leading/trailing non-speech).
    """

    name: str
    token_duration_s: float
    offset_s: float
    n_tokens: int
    owner: list[int]
    straddling_tokens: int


@dataclass
class Quality:
    n_boundaries: int
    refinement_fallback_rate: float
    mean_confidence: float
    min_confidence: float
    n_interpolated_words: int
    straddling_tokens: int
    low_confidence_words: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class Segmentation:
    audio: AudioInfo
    transcript: TranscriptInfo
    model: ModelInfo
    parameters: dict[str, Any]
    words: list[WordSegment]
    context: list[ContextSpan]
    grid: TokenGrid
    quality: Quality
    schema_version: str = SCHEMA_VERSION

    @property
    def n_words(self) -> int:
        return len(self.words)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segmentation:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"unsupported segmentation schema_version {version!r} (expected {SCHEMA_VERSION})")
        return cls(
            audio=AudioInfo(**data["audio"]),
            transcript=TranscriptInfo(**data["transcript"]),
            model=ModelInfo(**data["model"]),
            parameters=dict(data["parameters"]),
            words=[WordSegment(**w) for w in data["words"]],
            context=[ContextSpan(**c) for c in data["context"]],
            grid=TokenGrid(**data["grid"]),
            quality=Quality(**data["quality"]),
            schema_version=version,
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Segmentation:
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Segmentation:
        """Read a segments JSON written by ``sgpa align``; ``InputError`` if it is missing or not one."""
        from sgpa.errors import InputError

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such segments file")
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{path}: not a JSON file ({' '.join(str(error).split())[:200]})") from None
        return cls.from_checked_dict(data, source=str(path))

    @classmethod
    def from_checked_dict(cls, data: Any, source: str = "segments") -> Segmentation:
        """A segmentation from untrusted JSON data: schema and invariants checked, ``InputError`` otherwise.

        Beyond the schema: every number finite, words in order and not overlapping, every span inside the audio,
        token spans inside the grid, one owner per token naming a word or context.
        """
        from sgpa.errors import InputError

        import jsonschema

        try:
            jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
        except jsonschema.ValidationError as error:
            where = "/".join(str(part) for part in error.absolute_path) or "top level"
            raise InputError(f"{source}: not an sgpa segments file ({where}: {error.message[:160]})") from None
        segmentation = cls.from_dict(data)
        problem = segmentation.invariant_violation()
        if problem:
            raise InputError(f"{source}: inconsistent segments: {problem}")
        return segmentation

    def invariant_violation(self) -> str | None:
        """What is wrong with this segmentation's times and token spans, or None when nothing is."""
        duration = self.audio.duration_s
        tolerance = 1e-3
        numbers = [duration] + [value for w in self.words for value in (w.start, w.end, w.ctc_start, w.ctc_end,
                                                                         w.confidence)]
        numbers += [value for c in self.context for value in (c.start, c.end)]
        numbers += [self.grid.token_duration_s, self.grid.offset_s]
        if not all(math.isfinite(value) for value in numbers):
            return "a time or confidence is not a finite number"
        previous_end = 0.0
        for position, word in enumerate(self.words):
            if word.index != position:
                return f"word {position} has index {word.index}"
            if not 0 <= word.start <= word.end <= duration + tolerance:
                return f"word {position} ({word.text!r}) spans {word.start}-{word.end} s, outside the audio or reversed"
            if word.start < previous_end - tolerance:
                return f"word {position} ({word.text!r}) starts before the previous word ends"
            previous_end = word.end
            if not 0 <= word.token_start <= word.token_end <= self.grid.n_tokens:
                return f"word {position} ({word.text!r}) has token span {word.token_start}-{word.token_end} outside the grid"
        for span in self.context:
            if not 0 <= span.start <= span.end <= duration + tolerance:
                return f"the {span.kind} context spans {span.start}-{span.end} s, outside the audio or reversed"
            if not 0 <= span.token_start <= span.token_end <= self.grid.n_tokens:
                return f"the {span.kind} context has a token span outside the grid"
        if len(self.grid.owner) != self.grid.n_tokens:
            return f"the grid lists {len(self.grid.owner)} owners for {self.grid.n_tokens} tokens"
        if any(not -1 <= owner < self.n_words for owner in self.grid.owner):
            return "a token's owner is neither a word nor context"
        return None

    def save(self, path: str | Path) -> Path:
        """Write the JSON atomically (complete or absent)."""
        from sgpa.io import atomic_write_text

        return atomic_write_text(path, self.to_json() + "\n")

    def check_audio(self, audio: AudioInfo, source: str = "segments") -> None:
        """``InputError`` unless this segmentation was computed on ``audio`` (same sha256 and duration).

        ``source`` names the segmentation in the message (its file, say).
        """
        from sgpa.errors import InputError

        if self.audio.sha256 != audio.sha256:
            raise InputError(
                f"{source}: the segments were computed on different audio (sha256 {self.audio.sha256[:12]}... "
                f"!= {audio.sha256[:12]}...)"
            )
        if abs(self.audio.duration_s - audio.duration_s) > 0.01:
            raise InputError(
                f"{source}: the segments describe {self.audio.duration_s:.3f} s of audio, the audio has "
                f"{audio.duration_s:.3f} s"
            )

    # --- views and other formats (each imports what it needs when called) ---------------------------------

    def plot(self, waveform: Any = None) -> Any:
        """A matplotlib ``Figure``: waveform and spectrogram with the final cuts, raw CTC spans and the token grid.

        ``waveform`` (float ``[n_samples]`` at ``audio.sample_rate``) defaults to the audio file this segmentation
        was computed on, read again and checked against its sha256.
        """
        from sgpa.plot import segmentation_figure

        return segmentation_figure(self, waveform if waveform is not None else self.waveform())

    def save_plot(self, path: str | Path, waveform: Any = None) -> Path:
        """Write :meth:`plot` as a PNG, atomically."""
        from sgpa.plot import plot_segmentation

        return plot_segmentation(self, waveform if waveform is not None else self.waveform(), path)

    def to_textgrid(self, path: str | Path) -> Path:
        """Write a Praat TextGrid (tiers: words, ctc, tokens), atomically."""
        from sgpa.textgrid import write_textgrid

        return write_textgrid(self, path)

    def waveform(self) -> Any:
        """The audio this segmentation was computed on (float32 ``[n_samples]`` at ``audio.sample_rate``), read
        again from its file and checked against the recorded sha256."""
        from sgpa.audio import load_audio

        samples, info = load_audio(self.audio.path, sample_rate=self.audio.sample_rate, max_duration_s=None)
        self.check_audio(info, source=self.audio.path)
        return samples

    @classmethod
    def from_word_times(cls, audio: Any, words: Any, **options: Any) -> Segmentation:
        """A segmentation from words timed elsewhere (MFA, WhisperX, a hand-labelled TextGrid): see
        :func:`sgpa.pipeline.segmentation_from_word_times` for the parameters."""
        from sgpa.pipeline import segmentation_from_word_times

        return segmentation_from_word_times(audio, words, **options)


#: The JSON Schema every written segmentation satisfies.
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "segmentation.schema.json"


def validate_segmentation_json(data: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` matches :data:`SCHEMA_PATH`."""
    import jsonschema

    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
