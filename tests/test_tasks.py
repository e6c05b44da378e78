"""The spoken tasks of the oracle model (sgpa.corpus.tasks) and its word tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from sgpa.corpus.tasks import (
    CATEGORIES,
    CATEGORY_OF,
    NONE_ANSWER,
    TASKS,
    answer_without,
    make_example,
    make_task_sentence,
    slot_word,
    task_vocabulary,
)


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    rng = np.random.default_rng(0)
    return [make_task_sentence(rng) for _ in range(3000)]


def test_every_sentence_has_exactly_one_category_word_and_all_slots_occur(sentences):
    slots = [slot_word(s) for s in sentences]  # raises unless exactly one
    assert {word for _, word, _ in slots} == set(CATEGORY_OF)
    assert all(s.split()[i] == w for s, (i, w, _) in zip(sentences, slots))


def test_slot_word_refuses_zero_or_two_category_words():
    with pytest.raises(ValueError):
        slot_word("the small table is here")
    with pytest.raises(ValueError):
        slot_word("the red dog is here")


def test_answers_follow_from_the_sentence_and_the_prompt():
    rng = np.random.default_rng(1)
    text = "we saw a horse in the garden"
    assert make_example(text, "slot", rng).answer == "horse"
    assert make_example(text, "slot", rng).answer_word == 3
    none = make_example(text, "none", rng)
    assert none.answer == NONE_ANSWER and "animal" not in none.prompt
    assert make_example(text, "yes", rng).prompt == "Did the speaker say horse?"
    for _ in range(20):
        no = make_example(text, "no", rng)
        assert no.answer == "no" and "horse" not in no.prompt and no.answer_word == 3
        control = make_example(text, "control", rng)
        assert control.prompt == f"Say the word {control.answer}." and control.answer_word is None
    assert make_example(text, "asr", rng).answer == text


def test_answers_without_some_words_follow_from_what_is_left():
    rng = np.random.default_rng(2)
    text = "we saw a horse in the garden"  # the slot word is word 3
    examples = {task: make_example(text, task, rng) for task in TASKS}
    without_slot = {task: answer_without(e, text, {3, 5}) for task, e in examples.items()}
    assert without_slot["slot"].answer == NONE_ANSWER and without_slot["slot"].answer_word is None
    assert without_slot["yes"].answer == "no" and without_slot["yes"].prompt == examples["yes"].prompt
    assert without_slot["asr"].answer == "we saw a in garden"
    for task in ("none", "no", "control"):
        assert without_slot[task] == examples[task]
    kept_slot = {task: answer_without(e, text, {0, 6}) for task, e in examples.items()}
    assert kept_slot["slot"] == examples["slot"] and kept_slot["yes"] == examples["yes"]
    assert kept_slot["asr"].answer == "saw a horse in the"
    assert answer_without(examples["asr"], text, set()) == examples["asr"]


def test_the_tokenizer_makes_every_task_word_and_answer_one_token(tmp_path):
    from transformers import AutoTokenizer

    from sgpa.attribution.models.lfm2_tiny import SPECIAL_TOKEN_IDS
    from sgpa.training.oracle_model import save_word_tokenizer

    size = save_word_tokenizer(tmp_path, task_vocabulary())
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    assert size % 64 == 0 and len(tokenizer) == size
    for token, token_id in SPECIAL_TOKEN_IDS.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id
    rng = np.random.default_rng(2)
    for _ in range(200):
        text = make_task_sentence(rng)
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert len(ids) == len(text.split()) and tokenizer.decode(ids) == text
        for task in TASKS:
            example = make_example(text, task, rng)
            if task != "asr":  # the assistant turn is " answer": the token that names the word in a question
                assert len(tokenizer.encode(" " + example.answer, add_special_tokens=False)) == 1
            prompt_ids = tokenizer.encode(example.prompt, add_special_tokens=False)
            assert tokenizer.decode(prompt_ids) == example.prompt
            assert tokenizer.convert_tokens_to_ids("<|unk|>") not in prompt_ids
    # anything else still encodes, character by character, and decodes back
    odd = "Zebras at 42 Main St., okay?"
    assert tokenizer.decode(tokenizer.encode(odd, add_special_tokens=False)) == odd
    assert len(CATEGORIES) == 6 and all(len(words) == 8 for words in CATEGORIES.values())
