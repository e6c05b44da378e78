"""Train the oracle LFM2-Audio model on the spoken tasks, within a wall-clock budget.

Usage::

    python -m sgpa.corpus.generate --out work_data/tasks/train --n 8000 --seed 11 --voices train --augment 0.5 \\
        --sentences tasks
    python -m sgpa.training.train_oracle --corpus work_data/tasks/train --out sgpa/models/sgpa-lfm2-oracle --minutes 75

Each step takes a length-bucketed batch of utterances, runs the conformer once per utterance, and asks every
utterance ``--tasks-per-utterance`` questions (:mod:`sgpa.corpus.tasks`) in the chat layout that
:class:`sgpa.attribution.models.lfm2_audio.Lfm2AudioBackend` scores::

    <|startoftext|><|im_start|>system\\n{question}<|im_end|>\\n<|im_start|>user\\n[audio]<|im_end|>\\n
    <|im_start|>assistant\\n {answer}<|im_end|>

The loss is the cross-entropy of the answer tokens (teacher forcing, each example's mean, logits from the tied
text embeddings as liquid-audio computes them) plus ``--ctc-weight`` times a word-level CTC loss of the
transcript on the conformer's 80 ms frames (a linear head dropped after training): it gives the encoder a
signal on every word from the first step, where the answer loss only speaks about one. Log-mel features
(liquid-audio's own front end, per-utterance normalisation) are computed once; SpecAugment-style time and band
masks are drawn per step. The learning rate warms up, then follows a cosine over the *time* budget. A dev set
(training voices, utterances left out) is scored every ``--eval-minutes`` by first-answer-token accuracy per
task (with ``--word-mask-fraction``, also with a fixed random coalition of words masked, answered as without
them; the score is the mean of both); the best checkpoint is what ``--out`` receives, weights stored as float16.
``--work-dir`` holds a resumable checkpoint (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgpa.corpus.tasks import TASKS, answer_without, draw_task, make_example, slot_word, task_vocabulary
from sgpa.refine import MIN_PAUSE_S
from sgpa.training.oracle_model import oracle_config, save_word_tokenizer
from sgpa.training.train_ctc import learning_rate, replace_folder, split_dev, write_checkpoint

IM_END_ID = 7
SUBSAMPLING = 8
MIN_MEL_FRAMES = 9  # the conformer's smallest input
MEL_HOP_S = 0.01
#: Maskings that training on masked words can imitate on precomputed log-mel: the backend's ``encoder-input``
#: (absent words' normalised log-mel frames zeroed before the conformer) and ``embedding`` (their audio embeddings
#: zeroed after the adapter). The waveform maskings would need the log-mel recomputed per step.
WORD_MASKINGS = ("encoder-input", "embedding")


@dataclass
class TaskUtterance:
    """A training utterance: normalised log-mel ``(128, n_frames)`` float16, transcript, its word ids."""

    id: str
    text: str
    mel: np.ndarray
    word_ids: np.ndarray
    voice: str
    word_frames: np.ndarray | None = None  # [n_words, 2] mel-frame [start, end) of each word's segment

    @property
    def n_audio(self) -> int:
        return -(-self.mel.shape[1] // SUBSAMPLING)


def chat_ids(tokenizer, prompt: str) -> tuple[list[int], list[int]]:
    """Token ids before and after the audio, encoded piece by piece exactly as liquid-audio's ``ChatState``."""
    def enc(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    before = enc("<|startoftext|>") + enc("<|im_start|>system\n") + enc(prompt) + enc("<|im_end|>\n")
    before += enc("<|im_start|>user\n")
    after = enc("<|im_end|>\n") + enc("<|im_start|>assistant\n")
    return before, after


def answer_ids(tokenizer, answer: str) -> list[int]:
    """The assistant turn's tokens: the answer after a space, then ``<|im_end|>``. With the space an answer word is
    the very token that names it in a question ("Did the speaker say red?"), so copying a word from the prompt and
    comparing it with the audio share one embedding (the output layer is tied to the input embeddings)."""
    return tokenizer.encode(" " + answer, add_special_tokens=False) + [IM_END_ID]


def word_mel_frames(word_times_s: list[tuple[float, float]], n_frames: int, min_pause_s: float) -> np.ndarray:
    """``[n_words, 2]`` mel-frame ``[start, end)`` of each word's segment, cut the way SGPA's segments are: words
    tile the speech, meeting at the middle of each gap shorter than ``min_pause_s``; a longer gap is a pause (context,
    nobody's). Frame ``k`` is centred on ``k * MEL_HOP_S`` and belongs to the segment holding that time."""
    edges = []
    for i, (start, end) in enumerate(word_times_s):
        if i > 0:
            previous_end = word_times_s[i - 1][1]
            if start - previous_end < min_pause_s:
                start = (previous_end + start) / 2
        if i + 1 < len(word_times_s):
            next_start = word_times_s[i + 1][0]
            if next_start - end < min_pause_s:
                end = (end + next_start) / 2
        edges.append((start, end))
    frames = np.ceil(np.round(np.asarray(edges, dtype=np.float64) / MEL_HOP_S, 6)).astype(np.int64)
    return np.clip(frames, 0, n_frames)


def load_task_utterances(entries: list[dict], corpus_dir: Path, processor, words: dict[str, int]) -> list[TaskUtterance]:
    """Read each utterance's audio and compute liquid-audio's log-mel once."""
    import soundfile
    import torch
    from tqdm import tqdm

    utterances = []
    for entry in tqdm(entries, desc="log-mel", file=sys.stderr, mininterval=5):
        samples, rate = soundfile.read(corpus_dir / entry["audio"], dtype="float32")
        if rate != 16000:
            raise ValueError(f"{entry['audio']}: expected 16 kHz, got {rate}")
        slot_word(entry["text"])  # every training sentence has exactly one category word
        wave = torch.as_tensor(samples)[None]
        with torch.no_grad():
            mel, _ = processor.audio(wave, torch.tensor([wave.shape[1]]))
        ids = np.array([words[w] for w in entry["text"].lower().split()], dtype=np.int64)
        record = json.loads((corpus_dir / entry["json"]).read_text()) if entry.get("json") else {}
        timed = record.get("words") or []
        word_frames = (word_mel_frames([(w["start"], w["end"]) for w in timed], mel.shape[-1], MIN_PAUSE_S)
                       if len(timed) == len(ids) else None)
        utterances.append(TaskUtterance(entry["id"], entry["text"], mel[0].numpy().astype(np.float16), ids,
                                        entry.get("voice", ""), word_frames))
    return utterances


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices cut into batches of similar length (sorted, chunked, shuffled chunk order)."""
    order = np.argsort(lengths + rng.uniform(0, 8, len(lengths)), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def spec_augment(mel, rng: np.random.Generator, n_time: int = 2, max_time: int = 5, n_band: int = 2, max_band: int = 12):
    """Zero (the normalised mean) a few short time spans and mel bands of each row of ``(k, 128, n_frames)``."""
    for row in range(mel.shape[0]):
        for _ in range(n_time):
            width = int(rng.integers(0, max_time + 1))
            start = int(rng.integers(0, max(1, mel.shape[2] - width)))
            mel[row, :, start : start + width] = 0
        for _ in range(n_band):
            width = int(rng.integers(0, max_band + 1))
            start = int(rng.integers(0, 128 - width))
            mel[row, start : start + width, :] = 0
    return mel


def mel_bin_hz(n_mels: int = 128, sample_rate: int = 16000) -> np.ndarray:
    """Centre frequencies of liquid-audio's mel bands (librosa's Slaney mel scale, 0 Hz to Nyquist)."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]


def warp_vocal_tract(mel: np.ndarray, alpha: float, centres_hz: np.ndarray) -> np.ndarray:
    """Vocal tract length perturbation of a log-mel ``(128, n_frames)``: the spectrum's content at ``f`` moves to
    ``alpha * f`` (``alpha > 1``: a shorter vocal tract, formants up), by interpolation across the bands.

    The training voices are mostly male; warping by up to ~1.25 brings their formants to where the held-out female
    voice has hers (Jaitly & Hinton 2013). No library does this on a precomputed log-mel.
    """
    source_hz = np.clip(centres_hz / alpha, centres_hz[0], centres_hz[-1])
    position = np.interp(source_hz, centres_hz, np.arange(len(centres_hz)))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(centres_hz) - 1)
    weight = (position - low)[:, None]
    return (1 - weight) * mel[low] + weight * mel[high]


def zero_absent_tokens(embeddings, utterance: TaskUtterance, absent: frozenset[int], masking: str):
    """``embedding`` masking of one utterance's audio embeddings ``(n_audio, hidden)``: the tokens whose 8 mel frames
    lie mostly in absent words are zeroed, as the backend zeroes the tokens an absent word owns."""
    if masking != "embedding" or not absent:
        return embeddings
    import torch

    absent_frame = np.zeros(embeddings.shape[0] * SUBSAMPLING, dtype=bool)
    for word in absent:
        start, end = utterance.word_frames[word]
        absent_frame[start:end] = True
    absent_token = absent_frame.reshape(-1, SUBSAMPLING).mean(axis=1) > 0.5
    keep = torch.as_tensor(~absent_token, device=embeddings.device)[:, None]
    return torch.where(keep, embeddings, torch.zeros((), dtype=embeddings.dtype, device=embeddings.device))


class OracleTrainer:
    """Holds the model, the CTC head and the tokenizer; computes the loss of one batch of utterances."""

    def __init__(self, model, tokenizer, n_words: int, tasks_per_utterance: int, ctc_weight: float,
                 vtlp_range: tuple[float, float] = (1.0, 1.0), vtlp_fraction: float = 0.0,
                 word_mask_fraction: float = 0.0, word_maskings: tuple[str, ...] = WORD_MASKINGS):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.ctc_head = torch.nn.Linear(model.conformer._feat_out, n_words + 1)  # blank = n_words
        self.blank = n_words
        self.tasks_per_utterance = tasks_per_utterance
        self.ctc_weight = ctc_weight
        self._chat_cache: dict[str, tuple[list[int], list[int]]] = {}
        self.vtlp_range = vtlp_range
        self.vtlp_fraction = vtlp_fraction
        self.centres_hz = mel_bin_hz()
        self.word_mask_fraction = word_mask_fraction
        self.word_maskings = word_maskings

    def parameters(self):
        return list(self.model.parameters()) + list(self.ctc_head.parameters())

    def chat(self, prompt: str):
        if prompt not in self._chat_cache:
            self._chat_cache[prompt] = chat_ids(self.tokenizer, prompt)
        return self._chat_cache[prompt]

    def draw_absent(self, utterances: list[TaskUtterance], rng: np.random.Generator,
                    fraction: float | None = None) -> list[tuple[frozenset[int], str]]:
        """Per utterance, the words to mask and how: with probability ``fraction`` (default ``word_mask_fraction``)
        a coalition drawn the way Shapley values weigh them (a number of absent words uniform in 1..n, then which
        ones uniformly) and one of ``word_maskings``; else nothing absent."""
        fraction = self.word_mask_fraction if fraction is None else fraction
        draws = []
        for u in utterances:
            if u.word_frames is None or rng.random() >= fraction:
                draws.append((frozenset(), ""))
                continue
            n = len(u.word_frames)
            absent = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
            draws.append((frozenset(int(i) for i in absent), str(rng.choice(self.word_maskings))))
        return draws

    def encode(self, utterances: list[TaskUtterance], rng: np.random.Generator | None,
               absent: list[tuple[frozenset[int], str]] | None = None):
        """Conformer outputs ``(k, n_frames/8, d_model)`` and their valid lengths for a batch of utterances;
        ``encoder-input``-masked words of ``absent`` have their log-mel frames zeroed first."""
        import torch

        n_frames = max(max(u.mel.shape[1] for u in utterances), MIN_MEL_FRAMES)
        mel = np.zeros((len(utterances), 128, n_frames), dtype=np.float32)
        for row, u in enumerate(utterances):
            features = u.mel.astype(np.float32)
            if rng is not None and rng.random() < self.vtlp_fraction:
                features = warp_vocal_tract(features, float(rng.uniform(*self.vtlp_range)), self.centres_hz)
            if absent is not None and absent[row][1] == "encoder-input":
                for word in absent[row][0]:
                    start, end = u.word_frames[word]
                    features[:, start:end] = 0.0  # the normalised features' per-band mean, as the backend masks
            mel[row, :, : u.mel.shape[1]] = features
        if rng is not None:
            mel = spec_augment(mel, rng)
        lengths = torch.tensor([max(u.mel.shape[1], MIN_MEL_FRAMES) for u in utterances])
        encoded, encoded_lengths = self.model.conformer(torch.from_numpy(mel), lengths)
        return encoded.mT, encoded_lengths

    def examples(self, utterances: list[TaskUtterance], rng: np.random.Generator, tasks: list[str] | None = None,
                 absent: list[tuple[frozenset[int], str]] | None = None):
        """``(utterance row, TaskExample)`` pairs: each utterance's questions, drawn or the given ``tasks``, answered
        as they should be with the words of ``absent`` unheard."""
        pairs = []
        for row, u in enumerate(utterances):
            for task in tasks or [draw_task(rng) for _ in range(self.tasks_per_utterance)]:
                example = make_example(u.text, task, rng)
                if absent is not None and absent[row][0]:
                    example = answer_without(example, u.text, absent[row][0])
                pairs.append((row, example))
        return pairs

    def answer_logits(self, audio_embeddings, pairs):
        """Logits at every answer position: list of ``(n_answer_tokens, vocab)`` tensors, and the target ids."""
        import torch

        embed = self.model.lfm.embed_tokens
        rows, targets, spans = [], [], []
        for row, example in pairs:
            before, after = self.chat(example.prompt)
            answer = answer_ids(self.tokenizer, example.answer)
            n_audio = audio_embeddings[row].shape[0]
            text = embed(torch.tensor(before + after + answer[:-1]))
            rows.append(torch.cat([text[: len(before)], audio_embeddings[row], text[len(before) :]]))
            first = len(before) + n_audio + len(after) - 1  # the position that predicts the first answer token
            spans.append((first, len(answer)))
            targets.append(torch.tensor(answer))
        width = max(r.shape[0] for r in rows)
        # right padding: the backbone is causal (attention and short convolutions), so it changes no earlier state
        batch = torch.stack([torch.nn.functional.pad(r, (0, 0, 0, width - r.shape[0])) for r in rows])
        hidden = self.model.lfm(inputs_embeds=batch, use_cache=False).last_hidden_state
        logits = [torch.nn.functional.linear(hidden[i, first : first + n], embed.weight)
                  for i, (first, n) in enumerate(spans)]
        return logits, targets

    def loss(self, utterances: list[TaskUtterance], rng: np.random.Generator):
        import torch

        absent = self.draw_absent(utterances, rng) if self.word_mask_fraction > 0 else None
        encoded, lengths = self.encode(utterances, rng, absent)
        audio = self.model.audio_adapter(encoded)
        n_audio = [u.n_audio for u in utterances]
        audio_embeddings = [audio[row, : n_audio[row]] for row in range(len(utterances))]
        if absent is not None:
            audio_embeddings = [zero_absent_tokens(e, u, *a) for e, u, a in zip(audio_embeddings, utterances, absent)]
        logits, targets = self.answer_logits(audio_embeddings, self.examples(utterances, rng, absent=absent))
        answer_loss = torch.stack([torch.nn.functional.cross_entropy(l, t) for l, t in zip(logits, targets)]).mean()
        log_probs = torch.log_softmax(self.ctc_head(encoded), -1).transpose(0, 1)
        # the encoder hears only what encoder-input masking left: its transcript is the words kept
        word_ids = [torch.from_numpy(u.word_ids if absent is None or absent[row][1] != "encoder-input" else
                                     np.delete(u.word_ids, sorted(absent[row][0])))
                    for row, u in enumerate(utterances)]
        ctc = torch.nn.functional.ctc_loss(
            log_probs, torch.cat(word_ids), lengths, torch.tensor([len(w) for w in word_ids]),
            blank=self.blank, reduction="mean", zero_infinity=True,
        )
        return answer_loss + self.ctc_weight * ctc, float(answer_loss.detach()), float(ctc.detach())

    def dev_accuracy(self, utterances: list[TaskUtterance], batch_size: int = 16,
                     masked: bool = False) -> dict[str, float]:
        """First-answer-token accuracy per task (teacher forcing; every answer but ASR's is one word token). With
        ``masked``, every utterance is heard with a random coalition of words masked (the same coalitions at every
        evaluation) and judged against the answers without them."""
        import torch

        rng = np.random.default_rng(12345)  # the same questions (and coalitions) at every evaluation
        correct = {t: [] for t in TASKS}
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(utterances), batch_size):
                chunk = utterances[start : start + batch_size]
                absent = self.draw_absent(chunk, rng, fraction=1.0) if masked else None
                encoded, _ = self.encode(chunk, None, absent)
                audio = self.model.audio_adapter(encoded)
                embeddings = [audio[row, : u.n_audio] for row, u in enumerate(chunk)]
                if absent is not None:
                    embeddings = [zero_absent_tokens(e, u, *a) for e, u, a in zip(embeddings, chunk, absent)]
                pairs = self.examples(chunk, rng, tasks=list(TASKS), absent=absent)
                logits, targets = self.answer_logits(embeddings, pairs)
                for (_, example), l, t in zip(pairs, logits, targets):
                    correct[example.task].append(bool((l.argmax(-1) == t).all()))
        self.model.train()
        return {t: float(np.mean(v)) for t, v in correct.items()}


def save_oracle(model, tokenizer_dir: Path, config: dict, out_dir: Path, summary: dict) -> None:
    """Write ``config.json``, float16 ``model.safetensors``, the tokenizer and ``training_summary.json`` into
    ``out_dir`` (replaced as a whole; other files there, such as the model card, are kept)."""
    import safetensors.torch

    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    shutil.copytree(tokenizer_dir, tmp_dir)
    (tmp_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    state = {k: v.detach().half().contiguous() if v.is_floating_point() else v.contiguous()
             for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(tmp_dir / "model.safetensors"), metadata={"format": "pt"})
    (tmp_dir / "training_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    replace_folder(tmp_dir, out_dir)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", required=True, help="task corpus folder (manifest.jsonl; sgpa.corpus.generate --sentences tasks)")
    p.add_argument("--out", required=True, help="where the best model is saved")
    p.add_argument("--work-dir", default=None, help="checkpoints and logs (default: <out>.work)")
    p.add_argument("--minutes", type=float, default=75.0, help="wall-clock training budget")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (testing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1.5e-3, help="peak learning rate (AdamW)")
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--batch-utterances", type=int, default=16)
    p.add_argument("--tasks-per-utterance", type=int, default=2)
    p.add_argument("--ctc-weight", type=float, default=0.3)
    p.add_argument("--max-utterances", type=int, default=None)
    p.add_argument("--dev-fraction", type=float, default=0.03)
    p.add_argument("--max-dev", type=int, default=160)
    p.add_argument("--eval-minutes", type=float, default=8.0)
    p.add_argument("--vtlp-range", type=float, nargs=2, default=(0.9, 1.25), metavar=("LOW", "HIGH"),
                   help="vocal tract length perturbation factors (1 1 turns it off)")
    p.add_argument("--vtlp-fraction", type=float, default=0.5, help="share of training utterances warped")
    p.add_argument("--word-mask-fraction", type=float, default=0.0,
                   help="share of training utterances heard with a random coalition of words masked out (answers "
                        "rewritten: no slot word -> none / no)")
    p.add_argument("--word-maskings", default=",".join(WORD_MASKINGS),
                   help="how masked words are removed, one drawn per utterance: " + ", ".join(WORD_MASKINGS))
    p.add_argument("--init", default=None,
                   help="start from an earlier run's checkpoint.pt, a model state dict, or a saved model folder "
                        "(such as the shipped sgpa/models/sgpa-lfm2-oracle; its CTC head was dropped, so a new one "
                        "is trained) instead of random weights")
    p.add_argument("--resume", action="store_true", help="continue from <work-dir>/checkpoint.pt")
    return p.parse_args(argv)


def initial_state(path: Path) -> dict:
    """The weights ``--init`` names: a ``checkpoint.pt`` (``{"model", "ctc_head", ...}``), a bare state dict, or a
    model folder's float16 ``model.safetensors`` (widened to float32 when loaded into the model)."""
    import torch

    if path.is_dir():
        import safetensors.torch

        return {"model": safetensors.torch.load_file(str(path / "model.safetensors"))}
    return torch.load(path, weights_only=False)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch
    from liquid_audio import LFM2AudioModel, LFM2AudioProcessor

    from sgpa.attribution.models.lfm2_tiny import config_object

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    corpus_dir = Path(args.corpus)
    out_dir = Path(args.out)
    work_dir = Path(args.work_dir) if args.work_dir else out_dir.with_name(out_dir.name + ".work")
    work_dir.mkdir(parents=True, exist_ok=True)

    vocabulary = task_vocabulary()
    tokenizer_dir = work_dir / "tokenizer"
    vocab_size = save_word_tokenizer(tokenizer_dir, vocabulary)
    config = oracle_config(vocab_size)
    (tokenizer_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    processor = LFM2AudioProcessor.from_pretrained(tokenizer_dir, device="cpu")
    model = LFM2AudioModel(config_object(config))
    maskings = tuple(m for m in args.word_maskings.split(",") if m)
    unknown = [m for m in maskings if m not in WORD_MASKINGS]
    if unknown or not 0.0 <= args.word_mask_fraction <= 1.0:
        raise SystemExit(f"error: --word-maskings must be among {', '.join(WORD_MASKINGS)} and --word-mask-fraction "
                         f"in [0, 1] (got {args.word_maskings!r}, {args.word_mask_fraction})")
    trainer = OracleTrainer(model, processor.text, len(vocabulary), args.tasks_per_utterance, args.ctc_weight,
                            vtlp_range=tuple(args.vtlp_range), vtlp_fraction=args.vtlp_fraction,
                            word_mask_fraction=args.word_mask_fraction, word_maskings=maskings)
    if args.init:
        state = initial_state(Path(args.init))
        model.load_state_dict(state.get("model", state))
        if "ctc_head" in state:
            trainer.ctc_head.load_state_dict(state["ctc_head"])
    words = {w: i for i, w in enumerate(vocabulary)}

    entries = [json.loads(line) for line in (corpus_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]
    train_entries, dev_entries = split_dev(entries, args.dev_fraction, args.max_dev, rng)
    if args.max_utterances:
        train_entries = train_entries[: args.max_utterances]
    train = load_task_utterances(train_entries, corpus_dir, processor, words)
    dev = load_task_utterances(dev_entries, corpus_dir, processor, words)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(train)} training utterances ({sum(u.mel.shape[1] for u in train) / 360000:.2f} h), {len(dev)} dev; "
          f"{n_params / 1e6:.2f} M parameters", flush=True)

    optimizer = torch.optim.AdamW(trainer.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=args.weight_decay)
    step, epoch, trained_s, best_score, history = 0, 0, 0.0, -1.0, []
    if args.resume and (work_dir / "checkpoint.pt").exists():
        state = torch.load(work_dir / "checkpoint.pt", weights_only=False)
        model.load_state_dict(state["model"])
        trainer.ctc_head.load_state_dict(state["ctc_head"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, trained_s, best_score, history = (state[k] for k in ("step", "epoch", "trained_s", "best_score", "history"))
        rng = np.random.default_rng([args.seed, step])
        print(f"resumed at step {step} ({trained_s / 60:.1f} min)", flush=True)

    budget_s = args.minutes * 60
    start = time.time() - trained_s
    last_eval = time.time()
    lengths = np.array([u.mel.shape[1] for u in train])
    model.train()
    done = False
    while not done:
        for batch in bucketed_batches(lengths, args.batch_utterances, rng):
            elapsed = time.time() - start
            if elapsed >= budget_s or (args.max_steps is not None and step >= args.max_steps):
                done = True
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, elapsed / budget_s, args.lr, args.warmup_steps)
            loss, answer_loss, ctc = trainer.loss([train[i] for i in batch], rng)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainer.parameters(), 5.0)
            optimizer.step()
            step += 1
            if step % 50 == 0:
                print(f"step {step} {elapsed / 60:.1f} min answer {answer_loss:.3f} word-ctc {ctc:.3f} "
                      f"lr {optimizer.param_groups[0]['lr']:.2e}", flush=True)
            if time.time() - last_eval >= args.eval_minutes * 60:
                best_score = evaluate(trainer, optimizer, dev, step, epoch, start, best_score, history, work_dir)
                last_eval = time.time()
        else:
            epoch += 1
    best_score = evaluate(trainer, optimizer, dev, step, epoch, start, best_score, history, work_dir)
    model.load_state_dict(torch.load(work_dir / "best.pt", weights_only=True))
    summary = {
        "steps": step,
        "epochs": epoch,
        "train_minutes": round((time.time() - start) / 60, 1),
        "train_utterances": len(train),
        "train_hours": round(float(lengths.sum()) / 360000, 3),
        "dev_utterances": len(dev),
        "best_dev_accuracy": best_score,
        "parameters": n_params,
        "history": history,
        "args": vars(args),
    }
    save_oracle(model, tokenizer_dir, config, out_dir, summary)
    print(f"saved the best checkpoint (mean dev accuracy {best_score:.3f}) to {out_dir}", flush=True)


def evaluate(trainer, optimizer, dev, step, epoch, start, best_score, history, work_dir) -> float:
    """Score the dev set, keep the best weights in ``work_dir/best.pt`` and write a resumable checkpoint."""
    import torch

    accuracy = trainer.dev_accuracy(dev)
    scored = [accuracy[t] for t in TASKS if t != "asr"]
    if trainer.word_mask_fraction > 0:  # pick the checkpoint on what it is trained for: heard whole and masked
        masked = trainer.dev_accuracy(dev, masked=True)
        accuracy.update({f"masked {t}": a for t, a in masked.items()})
        scored += [masked[t] for t in TASKS if t != "asr"]
    score = float(np.mean(scored))
    elapsed = time.time() - start
    history.append({"step": step, "minutes": round(elapsed / 60, 2), "score": round(score, 4),
                    **{t: round(a, 4) for t, a in accuracy.items()}})
    print(f"eval step {step} {elapsed / 60:.1f} min score {score:.3f} " +
          " ".join(f"{t} {a:.2f}" for t, a in accuracy.items()), flush=True)
    if score > best_score:
        best_score = score
        torch.save(trainer.model.state_dict(), work_dir / "best.pt")
    state = {
        "model": trainer.model.state_dict(),
        "ctc_head": trainer.ctc_head.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "epoch": epoch,
        "trained_s": elapsed,
        "best_score": best_score,
        "history": history,
    }
    write_checkpoint(work_dir, state, history)
    return best_score


if __name__ == "__main__":
    main()
