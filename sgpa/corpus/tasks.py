"""Spoken tasks with known answers: sentences holding exactly one slot word, and questions about them.

Each sentence is drawn from a template with one *slot* filled from a closed category (:data:`CATEGORIES`: six
categories of eight words) and its other words from a small filler vocabulary that shares no word with any
category, so exactly one word of the sentence belongs to a category: the word a slot question's answer depends on.

Questions (the system turn of an LFM2-Audio chat; the audio is the user turn; the answer is the assistant turn):

- ``slot``: "Which colour was mentioned?" -> the slot word ("red"), or ``none`` when the sentence's slot is of
  another category — so the same audio gets different answers under different prompts;
- ``yes``/``no``: "Did the speaker say dog?" -> ``yes`` when the slot word is "dog", else ``no``;
- ``control``: "Say the word seven." -> ``seven``: answerable from the prompt alone, the audio is irrelevant;
- ``asr``: "Perform ASR." -> the transcript.

Everything is a pure function of a ``numpy.random.Generator``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

CATEGORIES: dict[str, tuple[str, ...]] = {
    "colour": ("red", "blue", "green", "yellow", "black", "white", "purple", "orange"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "animal": ("dog", "cat", "horse", "bird", "fish", "cow", "sheep", "mouse"),
    "city": ("paris", "london", "berlin", "madrid", "boston", "tokyo", "rome", "chicago"),
    "name": ("anna", "david", "emma", "frank", "grace", "henry", "maria", "peter"),
    "fruit": ("apple", "banana", "lemon", "cherry", "mango", "peach", "grape", "melon"),
}
CATEGORY_OF: dict[str, str] = {word: category for category, words in CATEGORIES.items() for word in words}

FILLER_NOUNS = (
    "house car book table window garden river letter phone teacher doctor friend mother father brother sister "
    "train bus road bridge market school office kitchen door paper picture song story box bag bottle cup shirt "
    "coat chair bed floor wall lamp clock key ticket room street field forest mountain island boat plane"
).split()
FILLER_PLURALS = (
    "houses cars books tables letters phones teachers friends buses bridges boxes bags bottles cups shirts "
    "chairs lamps clocks keys tickets rooms boats plans songs stories"
).split()
FILLER_ADJECTIVES = (
    "big small old new happy sad quick slow bright dark cold warm quiet loud heavy strange simple busy clean "
    "dirty empty full tall short young lucky tired"
).split()
FILLER_VERBS = (
    "found saw bought sold opened closed painted cleaned carried moved watched liked wanted needed visited "
    "fixed took brought kept"
).split()
TIMES = "morning evening night week year".split()

# {slot} is the category word; {noun} {plural} {adj} {verb} {time} are fillers. Category-specific templates give
# natural syntax; the generic ones put a word of any category in a context that says nothing about it.
CATEGORY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "colour": (
        "the {slot} {noun} is on the {noun}",
        "she {verb} a {slot} {noun} last {time}",
        "I think the {noun} was {slot}",
        "they painted the {noun} {slot}",
    ),
    "number": (
        "we need {slot} {plural} for the {noun}",
        "there are {slot} {plural} in the {noun}",
        "he {verb} {slot} {plural} yesterday",
        "please wait {slot} minutes near the {noun}",
    ),
    "animal": (
        "the {slot} is sleeping near the {noun}",
        "a {adj} {slot} {verb} the {noun}",
        "we saw a {slot} in the {noun}",
        "my {slot} likes the {adj} {noun}",
    ),
    "city": (
        "the train to {slot} leaves in the {time}",
        "she lives in {slot} with her {noun}",
        "we {verb} the {noun} in {slot}",
        "{slot} is a {adj} place",
    ),
    "name": (
        "{slot} {verb} the {adj} {noun}",
        "please give the {noun} to {slot}",
        "I met {slot} at the {noun}",
        "the {noun} belongs to {slot}",
    ),
    "fruit": (
        "she {verb} a {slot} for the {noun}",
        "the {slot} is on the {adj} {noun}",
        "I would like a {slot} please",
        "we {verb} the {slot} in the {noun}",
    ),
}
GENERIC_TEMPLATES = (
    "I heard the word {slot} in the {noun}",
    "the {adj} {noun} said {slot} again",
    "{slot} was written on the {noun}",
    "my {noun} {verb} {slot} this {time}",
    "the answer is {slot} not the {noun}",
)
GENERIC_FRACTION = 0.4

TASKS = ("slot", "none", "yes", "no", "control", "asr")
# how often each task is drawn in training; evaluation reports each task on its own
TASK_WEIGHTS = {"slot": 0.25, "none": 0.10, "yes": 0.175, "no": 0.175, "control": 0.10, "asr": 0.20}
NONE_ANSWER = "none"
ASR_PROMPT = "Perform ASR."


def slot_prompt(category: str) -> str:
    return f"Which {category} was mentioned?"


def yes_no_prompt(word: str) -> str:
    return f"Did the speaker say {word}?"


def control_prompt(word: str) -> str:
    return f"Say the word {word}."


def _pick(options, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]


def make_task_sentence(rng: np.random.Generator) -> str:
    """One transcript with exactly one category word (lowercase words, no punctuation except "I")."""
    category = _pick(list(CATEGORIES), rng)
    slot = _pick(CATEGORIES[category], rng)
    templates = GENERIC_TEMPLATES if rng.random() < GENERIC_FRACTION else CATEGORY_TEMPLATES[category]
    fillers = {"noun": FILLER_NOUNS, "plural": FILLER_PLURALS, "adj": FILLER_ADJECTIVES, "verb": FILLER_VERBS,
               "time": TIMES}
    template = _pick(templates, rng)
    return re.sub(r"\{(\w+)\}", lambda m: slot if m.group(1) == "slot" else _pick(fillers[m.group(1)], rng), template)


def slot_word(text: str) -> tuple[int, str, str]:
    """``(word index, word, category)`` of the one category word of a task transcript; ``ValueError`` if not one."""
    found = [(i, w, CATEGORY_OF[w]) for i, w in enumerate(text.lower().split()) if w in CATEGORY_OF]
    if len(found) != 1:
        raise ValueError(f"expected exactly one category word in {text!r}, found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class TaskExample:
    """One question about one utterance: the system prompt, the expected answer, and where it comes from.

    ``answer_word`` is the index of the transcript word the answer depends on (the slot word for ``slot``,
    ``yes`` and ``no``), ``None`` when no single spoken word decides it (``none``, ``control``, ``asr``).
    """

    task: str
    prompt: str
    answer: str
    answer_word: int | None


def make_example(text: str, task: str, rng: np.random.Generator) -> TaskExample:
    """The question of kind ``task`` (one of :data:`TASKS`) about a task transcript."""
    index, word, category = slot_word(text)
    if task == "slot":
        return TaskExample(task, slot_prompt(category), word, index)
    if task == "none":
        other = _pick([c for c in CATEGORIES if c != category], rng)
        return TaskExample(task, slot_prompt(other), NONE_ANSWER, None)
    if task == "yes":
        return TaskExample(task, yes_no_prompt(word), "yes", index)
    if task == "no":
        # half the time a word of the same category: the question cannot be answered from the category alone
        pool = [w for w in CATEGORIES[category] if w != word] if rng.random() < 0.5 else [
            w for w in CATEGORY_OF if CATEGORY_OF[w] != category]
        return TaskExample(task, yes_no_prompt(_pick(pool, rng)), "no", index)
    if task == "control":
        target = _pick(list(CATEGORY_OF) + FILLER_NOUNS, rng)
        return TaskExample(task, control_prompt(target), target, None)
    if task == "asr":
        return TaskExample(task, ASR_PROMPT, text.lower(), None)
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def answer_without(example: TaskExample, text: str, absent: set[int] | frozenset[int]) -> TaskExample:
    """The same question when the words at indices ``absent`` are not heard (masked out of the audio).

    Without its slot word a sentence names no category word: the slot question's answer becomes ``none`` and
    "Did the speaker say <slot word>?" becomes ``no``; ASR transcribes the words left; the other answers never
    depended on a spoken word. Training on such examples makes "the answer depends on the slot word alone" true of
    the model under masking too, which is what an oracle for attribution needs.
    """
    index, _, _ = slot_word(text)
    if index in absent and example.task == "slot":
        return TaskExample(example.task, example.prompt, NONE_ANSWER, None)
    if index in absent and example.task == "yes":
        return TaskExample(example.task, example.prompt, "no", index)
    if example.task == "asr" and absent:
        kept = [w for i, w in enumerate(text.lower().split()) if i not in absent]
        return TaskExample(example.task, example.prompt, " ".join(kept), None)
    return example


def draw_task(rng: np.random.Generator) -> str:
    """A task drawn with :data:`TASK_WEIGHTS`."""
    names = list(TASK_WEIGHTS)
    weights = np.array([TASK_WEIGHTS[n] for n in names])
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def task_vocabulary() -> list[str]:
    """Every word the tasks speak, ask or answer (lowercase), sorted: the word tokens of the oracle's tokenizer."""
    words = set(CATEGORY_OF) | set(FILLER_NOUNS) | set(FILLER_PLURALS) | set(FILLER_ADJECTIVES) | set(FILLER_VERBS)
    words |= set(TIMES) | set(CATEGORIES) | {NONE_ANSWER, "yes", "no"}
    for template in [t for ts in CATEGORY_TEMPLATES.values() for t in ts] + list(GENERIC_TEMPLATES):
        words |= {w.lower() for w in re.sub(r"\{\w+\}", " ", template).split()}
    for prompt in (slot_prompt("x"), yes_no_prompt("x"), control_prompt("x"), ASR_PROMPT):
        words |= {w.lower() for w in re.findall(r"[A-Za-z]+", prompt)} - {"x"}
    return sorted(words)


def bench_rows(corpus_rows: list[dict], task: str = "slot", seed: int = 0) -> list[dict]:
    """``sgpa bench`` manifest rows for a task corpus: audio, transcript, the question as ``prompt``, the expected
    ``answer`` and ``answer_word`` (the index of the word the answer depends on, where one does)."""
    rows = []
    for index, row in enumerate(corpus_rows):
        example = make_example(row["text"], task, np.random.default_rng([seed, index]))
        rows.append({"id": row["id"], "audio": row["audio"], "transcript": row["text"], "prompt": example.prompt,
                     "answer": example.answer, "answer_word": example.answer_word, "task": task})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write a bench manifest of questions about a task corpus: ``python -m sgpa.corpus.tasks CORPUS --task slot``."""
    import argparse
    import json
    from pathlib import Path

    from sgpa.io import atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m sgpa.corpus.tasks", description=main.__doc__)
    parser.add_argument("corpus", help="a task corpus folder (sgpa.corpus.generate --sentences tasks)")
    parser.add_argument("--task", default="slot", choices=TASKS)
    parser.add_argument("--out", default=None, help="default: CORPUS/bench_<task>.jsonl")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    corpus = Path(args.corpus)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    out = Path(args.out) if args.out else corpus / f"bench_{args.task}.jsonl"
    manifest = bench_rows(rows[: args.limit], args.task)
    atomic_write_text(out, "".join(json.dumps(row) + "\n" for row in manifest))
    print(f"{len(manifest)} rows -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
