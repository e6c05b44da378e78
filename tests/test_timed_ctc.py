"""Time-windowed CTC training: the loss, the windows built from corpus times, and what a model learns from them."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest

from sgpa.training.timed_ctc import WordEdges, label_windows_s, timed_ctc_loss, windows_to_frames, word_edges


def _open_frames(batch: int, n_labels: int, n_frames: int):
    import torch

    return torch.stack([torch.zeros(batch, n_labels, dtype=torch.long), torch.full((batch, n_labels), n_frames)], -1)


def test_open_windows_give_plain_ctc_loss_and_gradient():
    import torch

    torch.manual_seed(0)
    batch, n_frames, n_classes, n_labels = 4, 40, 6, 10
    logits = torch.randn(batch, n_frames, n_classes, requires_grad=True)
    log_probs = logits.log_softmax(-1)
    labels = torch.randint(1, n_classes, (batch, n_labels))
    labels[0, 3] = labels[0, 2]  # a repeated label needs a blank between its two emissions
    label_lengths = torch.tensor([10, 7, 1, 9])
    input_lengths = torch.tensor([40, 31, 2, 25])

    nll, feasible = timed_ctc_loss(log_probs, input_lengths, labels, label_lengths, _open_frames(batch, n_labels, n_frames))
    reference = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), labels, input_lengths, label_lengths, reduction="none")
    assert feasible.all()
    torch.testing.assert_close(nll, reference, rtol=1e-5, atol=1e-4)
    ours = torch.autograd.grad(nll.sum(), logits, retain_graph=True)[0]
    theirs = torch.autograd.grad(reference.sum(), logits)[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def _collapse(path: tuple[int, ...]) -> tuple[list[int], list[list[int]]]:
    """Labels of a CTC path (blank 0) and the frames each label occupies."""
    labels, frames, previous = [], [], 0
    for t, symbol in enumerate(path):
        if symbol != 0 and symbol == previous:
            frames[-1].append(t)
        elif symbol != 0:
            labels.append(symbol)
            frames.append([t])
        previous = symbol
    return labels, frames


def test_windows_sum_exactly_the_admissible_paths():
    import torch

    torch.manual_seed(1)
    n_frames, n_classes = 6, 3
    log_probs = torch.randn(1, n_frames, n_classes).log_softmax(-1)
    labels = [1, 2, 2]
    frames = torch.tensor([[[0, 1], [1, 4], [3, 6]]])
    admissible = []
    for path in itertools.product(range(n_classes), repeat=n_frames):
        spelled, occupied = _collapse(path)
        if spelled == labels and all(frames[0, k, 0] <= t < frames[0, k, 1] for k in range(3) for t in occupied[k]):
            admissible.append(sum(log_probs[0, t, s] for t, s in enumerate(path)))
    expected = -torch.logsumexp(torch.stack(admissible), 0)
    nll, feasible = timed_ctc_loss(log_probs, torch.tensor([n_frames]), torch.tensor([labels]), torch.tensor([3]), frames)
    assert feasible.item()
    torch.testing.assert_close(nll[0], expected)
    plain = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([labels]), [n_frames], [3], reduction="none")
    assert nll[0] > plain[0] + 1e-3  # windows removed probability mass


def test_windows_that_admit_no_path_are_reported_infeasible():
    import torch

    log_probs = torch.randn(1, 10, 4).log_softmax(-1)
    frames = torch.tensor([[[2, 3], [2, 3]]])  # two labels forced into one frame
    _, feasible = timed_ctc_loss(log_probs, torch.tensor([10]), torch.tensor([[1, 2]]), torch.tensor([2]), frames)
    assert not feasible.item()


def test_edge_characters_are_pinned_to_edge_phones_and_delimiters_to_the_gap():
    from sgpa.training.data import spell_transcript
    from sgpa.training.model import character_vocabulary

    vocab = character_vocabulary()
    labels, word_of_label = spell_transcript("cat 24", vocab)
    assert word_of_label.tolist() == [0, 0, 0, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # CAT|TWENTY|FOUR
    words = [{"start": 0.10, "end": 0.40}, {"start": 0.50, "end": 1.20}]
    phones = [
        {"start": 0.10, "end": 0.18},  # k
        {"start": 0.18, "end": 0.30},  # ae
        {"start": 0.30, "end": 0.40},  # t
        {"start": 0.50, "end": 0.58},  # t (twenty)
        {"start": 0.58, "end": 1.05},
        {"start": 1.05, "end": 1.20},  # r (four)
    ]
    edges = word_edges(words, phones)
    assert edges[0] == WordEdges(0.10, 0.40, 0.18, 0.30)
    windows = label_windows_s(word_of_label, edges)
    np.testing.assert_allclose(windows[0], [0.10, 0.18])  # C: first phone
    np.testing.assert_allclose(windows[1], [0.10, 0.40])  # A: anywhere in the word
    np.testing.assert_allclose(windows[2], [0.30, 0.40])  # T: last phone
    np.testing.assert_allclose(windows[3], [0.40, 0.50])  # | between the words: the pause
    np.testing.assert_allclose(windows[4], [0.50, 0.58])  # T of TWENTY
    np.testing.assert_allclose(windows[10], [0.50, 1.20])  # | inside the numeral: anywhere in it
    np.testing.assert_allclose(windows[-1], [1.05, 1.20])  # R of FOUR


def test_one_character_word_may_sound_anywhere_in_the_word():
    windows = label_windows_s(np.array([0]), [WordEdges(0.2, 0.5, 0.3, 0.4)])
    np.testing.assert_allclose(windows[0], [0.2, 0.5])


def test_frame_ranges_follow_the_frame_start_convention():
    import torch

    frames = windows_to_frames(torch.tensor([[0.03, 0.07], [-1e9, 1e9]]), 0.02, 50)
    assert frames.tolist() == [[1, 4], [0, 50]]


def test_speed_change_moves_events_to_time_over_factor_and_windows_follow():
    from sgpa.training.data import TrainingUtterance, change_speed, collate
    from sgpa.training.model import build_processor

    samples = np.zeros(16000, np.float32)
    samples[8000] = 1.0  # a click at 0.5 s
    faster = change_speed(samples, 1.25)
    assert len(faster) == 12800
    assert abs(np.argmax(faster) / 16000 - 0.4) < 1e-3

    windows = np.array([[0.1, 0.5]])
    utt = TrainingUtterance("x", "a", samples, np.array([9]), "train", label_windows_s=windows)
    rng = np.random.default_rng(0)
    batch = collate([utt], build_processor("wav2vec2"), augment_rng=rng, speed_range=(1.25, 1.25), speed_probability=1.0)
    assert batch["input_values"].shape[1] == 12800
    np.testing.assert_allclose(batch["label_windows_s"][0, 0].numpy(), [0.08, 0.4])


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_tiny_model_trained_with_windows_emits_its_characters_inside_them():
    import torch

    from sgpa.corpus import flite
    from sgpa.ctc import align_characters
    from sgpa.training.data import TrainingUtterance, collate, label_windows_s, spell_transcript
    from sgpa.training.model import build_model, build_processor
    from sgpa.training.train_ctc import batch_loss

    torch.manual_seed(0)
    text = "the red box"
    (utterance,) = flite.synthesize([text], "kal16")
    labels, word_of_label = spell_transcript(text)
    edges = word_edges([vars(w) for w in utterance.words], [vars(p) for p in utterance.phones])
    windows = label_windows_s(word_of_label, edges) + np.array([-0.02, 0.02])
    utt = TrainingUtterance("x", text, utterance.samples, labels, "train", label_windows_s=windows)
    processor = build_processor("wav2vec2")
    model = build_model("wav2vec2", 64, 2, 2, 128)
    model.config.mask_time_prob = 0.0
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = collate([utt], processor)
    for _ in range(80):
        loss, timed_share = batch_loss(model, batch, frame_duration_s=0.02)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert timed_share == 1.0

    model.eval()
    with torch.inference_mode():
        inputs = {key: batch[key] for key in ("input_values", "attention_mask")}
        log_probs = model(**inputs).logits.log_softmax(-1)[0].numpy()
    aligned = align_characters(log_probs, labels, word_of_label, 0, 0.02)
    frames = windows_to_frames(torch.from_numpy(windows), 0.02, log_probs.shape[0]).numpy()
    inside = (aligned.start_frame >= frames[:, 0]) & (aligned.end_frame <= frames[:, 1])
    assert inside.mean() >= 0.9


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_a_run_on_a_timed_corpus_trains_with_windows_and_marks_the_model(tmp_path, capsys):
    import json

    import torch
    from transformers import AutoModelForCTC

    from sgpa.corpus import flite
    from sgpa.corpus.generate import write_utterance
    from sgpa.ctc import load_ctc_model
    from sgpa.training.train_ctc import main

    torch.set_num_threads(1)
    texts = ["the red box", "call me at 5", "a small dog ran", "near the river"]
    rows = [write_utterance(u, tmp_path, f"u{i}", "train") for i, u in enumerate(flite.synthesize(texts, "kal16"))]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "model"
    tiny = ["--hidden-size", "32", "--layers", "1", "--heads", "2", "--intermediate-size", "64"]
    main(["--corpus", str(tmp_path), "--out", str(out), "--dev-fraction", "0.25", "--max-steps", "3",
          "--batch-seconds", "3", "--threads", "1", *tiny])
    log = capsys.readouterr().out
    assert "3 with word times" in log
    assert AutoModelForCTC.from_pretrained(out).config.sgpa_delimiter_in_gap is True
    assert load_ctc_model(out).delimiter_marks_gaps
