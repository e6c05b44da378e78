"""espeak-ng speech with exact phone times, through libespeak-ng and ctypes.

The library calls back with audio chunks and events; every PHONEME event carries the sample
index (at espeak's 22,050 Hz) where that phoneme starts in the very waveform being produced, and
the character position of the word it belongs to. A word starts where its first phoneme starts
and ends where the next phoneme (or pause) event after its last phoneme starts, or at the end of
the audio. Names starting with ``_`` are pauses and ``;`` is a zero-length marker; neither is a
phone.

espeak-ng is the least natural of the three engines; its value is many cheap voice variants.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np

from sgpa.audio import resample
from sgpa.corpus.sentences import spoken_words
from sgpa.corpus.utterance import TimedPhone, TimedWord, Utterance
from sgpa.errors import InputError

TRAIN_VOICES = tuple(f"en-us+{v}" for v in ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f4", "f5"))
HELDOUT_VOICES = ("en-us+f3",)
VOICES = TRAIN_VOICES + HELDOUT_VOICES
OUTPUT_SAMPLE_RATE = 16000

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@lru_cache(maxsize=1)
def _library() -> tuple[ctypes.CDLL, int]:
    """Load and initialise libespeak-ng once per process; return it and its sample rate."""
    lib = ctypes.CDLL("libespeak-ng.so.1")
    sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
    if sample_rate <= 0:
        raise OSError("libespeak-ng failed to initialise")
    return lib, sample_rate


def _speak(text: str, voice: str) -> tuple[np.ndarray, list[tuple[str, int, int]], int]:
    """Synthesise ``text``; return (int16 samples, phoneme events as (name, char_position, sample), rate)."""
    lib, sample_rate = _library()
    chunks: list[np.ndarray] = []
    events: list[tuple[str, int, int]] = []

    def on_audio(wav, n_samples, event_list):
        if n_samples > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while event_list[i].type != _EVENT_LIST_TERMINATED:
            event = event_list[i]
            if event.type == _EVENT_PHONEME:
                events.append((event.id.string.decode("ascii", "replace"), event.text_position, event.sample))
            i += 1
        return 0

    callback = _Callback(on_audio)  # kept alive until synthesis is over
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode("ascii")) != 0:
        raise InputError(f"espeak-ng has no voice {voice!r}")
    data = text.encode("utf-8") + b"\0"
    lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, 0, None, None)
    lib.espeak_Synchronize()
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return samples, events, sample_rate


def _is_phone(name: str) -> bool:
    return bool(name) and not name.startswith("_") and name != ";"


def _owners(spoken: list[str], events: list[tuple[str, int, int]], separator: str = " ") -> list[int | None]:
    """Index of the spoken word each event belongs to (``None`` for pauses and markers).

    The text spoken was ``separator.join(spoken)`` (plus, possibly, a final character).
    """
    ranges = []  # 1-based character range of each word
    position = 1
    for word in spoken:
        ranges.append((position, position + len(word)))
        position += len(word) + len(separator)
    owners = []
    for name, char_position, _ in events:
        owner = next((k for k, (a, b) in enumerate(ranges) if a <= char_position < b), None)
        owners.append(owner if _is_phone(name) else None)
    return owners


@lru_cache(maxsize=100_000)
def _isolated_phone_count(word: str, voice: str) -> int:
    _, events, _ = _speak(word, voice)
    return sum(1 for name, _, _ in events if _is_phone(name))


def phone_counts(spoken: list[str], voice: str) -> list[int]:
    """Number of phones espeak gives each word when it is said on its own."""
    return [_isolated_phone_count(word, voice) for word in spoken]


def word_spans(
    owners: list[int | None], starts: list[int], counts: list[int]
) -> tuple[list[tuple[int, int]], list[int]] | None:
    """Per spoken word (start_sample, end_sample), and the event indices that are phones.

    ``owners[i]`` is the spoken word event ``i`` is attributed to (``None``: not a phone);
    ``starts`` has each event's start sample plus, last, the total number of samples.
    espeak folds unstressed words into a neighbour ("was a", "on the"): such a word gets no events
    of its own, and its neighbour's phones are dealt out again using ``counts`` (each word's phone
    count when said alone). Returns ``None`` where that does not add up.
    """
    n_words = len(counts)
    phone_events = [i for i, owner in enumerate(owners) if owner is not None]
    assigned: list[list[int]] = [[] for _ in range(n_words)]
    for i in phone_events:
        assigned[owners[i]].append(i)
    k = 0
    while k < n_words:
        if not assigned[k]:
            return None  # a word with no phones and no host before it
        # A host word followed by words that got no events of their own.
        end = k + 1
        while end < n_words and not assigned[end]:
            end += 1
        if end > k + 1:
            events = assigned[k]
            if sum(counts[k:end]) != len(events):
                return None
            position = 0
            for j in range(k, end):
                assigned[j] = events[position : position + counts[j]]
                position += counts[j]
        k = end
    spans = [(starts[group[0]], starts[group[-1] + 1]) for group in assigned]
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
        return None
    return spans, phone_events


def synthesize(texts: list[str], voice: str = "en-us+m3") -> list[Utterance | None]:
    """Synthesise each transcript with espeak-ng, resampled to 16 kHz.

    Returns one :class:`Utterance` per text, or ``None`` where a word got no phoneme events.
    """
    if voice not in VOICES:
        raise InputError(f"unknown espeak voice {voice!r}; choose one of {', '.join(VOICES)}")
    utterances: list[Utterance | None] = []
    for text in texts:
        per_word = [spoken_words(w) for w in text.split()]
        spoken = [s for group in per_word for s in group]
        samples, events, rate = _speak(" ".join(spoken), voice)
        owners = _owners(spoken, events)
        starts = [sample for _, _, sample in events] + [len(samples)]
        folded = any(k not in owners for k in range(len(spoken)))
        counts = phone_counts(spoken, voice) if folded else [0] * len(spoken)
        result = word_spans(owners, starts, counts)
        if result is None:
            utterances.append(None)
            continue
        spans, phone_events = result
        phones = [(events[i][0], starts[i], starts[i + 1]) for i in phone_events]
        words = []
        position = 0
        for word, group in zip(text.split(), per_word):
            first, last = spans[position], spans[position + len(group) - 1]
            words.append(TimedWord(word, first[0] / rate, last[1] / rate))
            position += len(group)
        audio = resample(samples.astype(np.float32) / 32768.0, rate, OUTPUT_SAMPLE_RATE)
        utterances.append(
            Utterance(
                text=text,
                samples=np.clip(audio, -1.0, 1.0).astype(np.float32),
                sample_rate=OUTPUT_SAMPLE_RATE,
                words=words,
                phones=[TimedPhone(name, a / rate, b / rate) for name, a, b in phones],
                engine="espeak",
                voice=voice,
            )
        )
    return utterances
