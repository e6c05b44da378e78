"""How much of an absent word still reaches the model, for each masking, measured on the oracle LFM2-Audio model.

For held-out task utterances the oracle answers a slot question ("Which colour was mentioned?") whose answer is the
one slot word. The same synthesiser and voice then speak the sentence *without* that word, so there is audio in
which the word is truly absent. With ``ids`` the model's answer on the full utterance:

* ``v_full``    = log p(ids | full utterance);
* ``v_removed`` = log p(ids | the sentence re-synthesised without the slot word) — no trace of the word at all;
* ``v_masked``  = log p(ids | full utterance with the slot word masked), i.e. the game's value of the coalition of
  every other word, for each masking.

The **leak** of a masking is ``(v_masked - v_removed) / (v_full - v_removed)``: the share of the slot word's
evidence that survives its masking (0: the masked input is as uninformative as true absence; 1: masking removed
nothing; below 0: masking removes more than absence, e.g. it adds misleading evidence). Reported with its median and
quartiles over utterances, the share of utterances where the masked input still gives the answer more than half its
full log-probability gain, and the token-ownership variant for embedding masking: a token owned by the word by
majority overlap (the default) or every token that overlaps the word at all.

    python benchmarks/masking_leak.py --corpus work_data/tasks/heldout --n 100

writes ``benchmarks/results/masking_leak.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgpa.io import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MASKINGS = ("embedding", "embedding-mean", "encoder-input", "silence", "noise", "deletion")


def teacher_forced(backend, prompt: str, audio_embeddings, ids: list[int]) -> float:
    """Summed log p(ids | prompt, audio embeddings ``(1, n_audio, hidden)``)."""
    from sgpa.attribution.models.lfm2_audio import ChatLayout

    layout = backend.chat_layout(prompt, int(audio_embeddings.shape[1]))
    layout = ChatLayout(layout.text_ids, layout.n_prefix, int(audio_embeddings.shape[1]))
    hidden = backend.hidden_states(backend.assemble(layout, audio_embeddings, ids))
    first = layout.length - 1
    return float(backend.response_log_probs(hidden[:, first : first + len(ids)], ids).sum())


def overlapping_tokens(word_start_s: float, word_end_s: float, n_tokens: int, token_s: float = 0.08) -> np.ndarray:
    """Tokens ``[k * token_s, (k + 1) * token_s)`` that overlap the word at all."""
    starts = np.arange(n_tokens) * token_s
    return (starts < word_end_s) & (starts + token_s > word_start_s)


def measure(backend, aligner, item: dict, synthesize) -> dict | None:
    import sgpa
    from sgpa.corpus.tasks import make_example

    example = make_example(item["text"], "slot", np.random.default_rng(0))
    words = sgpa.align(item["waveform"], item["text"], aligner=aligner, grid="lfm2-audio", sample_rate=16000)
    remaining = [w for i, w in enumerate(item["text"].split()) if i != example.answer_word]
    (removed,) = synthesize([" ".join(remaining)], item["voice"])
    if removed is None:
        return None
    record = {"id": item["id"], "voice": item["voice"], "slot": example.answer, "masked": {}}
    without = np.ones(words.n_words, dtype=bool)
    without[example.answer_word] = False
    ids = None
    for masking in MASKINGS:
        game = backend.prepare(item["waveform"], words, prompt=example.prompt, masking=masking)
        values = game.log_probs(np.stack([np.ones(words.n_words, dtype=bool), without])).sum(axis=1)
        if ids is None:
            ids = game.response.token_ids
            record["answer"] = game.response.text
            record["v_full"] = float(values[0])
            embeddings = backend.encode_mel(backend.log_mel(removed.samples[None]))
            record["v_removed"] = teacher_forced(backend, example.prompt, embeddings, ids)
            # embedding masking with every overlapping token masked (not only the majority-owned ones)
            full = game.full_embeddings.clone()
            word = words.words[example.answer_word]
            full[0, overlapping_tokens(word.start, word.end, full.shape[1])] = 0.0
            record["masked"]["embedding (any overlap)"] = teacher_forced(backend, example.prompt, full, ids)
            record["slot_tokens"] = {"majority": int((game.owner == example.answer_word).sum()),
                                     "any overlap": int(overlapping_tokens(word.start, word.end, full.shape[1]).sum())}
        record["masked"][masking] = float(values[1])
    gain = record["v_full"] - record["v_removed"]
    record["leak"] = {m: (v - record["v_removed"]) / gain if gain > 0 else float("nan") for m, v in record["masked"].items()}
    return record


def summarise(records: list[dict]) -> dict:
    names = list(records[0]["leak"])
    usable = [r for r in records if r["v_full"] - r["v_removed"] > 0.5]  # the word must matter to the answer
    summary = {"n": len(records), "n_usable": len(usable),
               "median_gain_nats": float(np.median([r["v_full"] - r["v_removed"] for r in records]))}
    for name in names:
        leak = np.array([r["leak"][name] for r in usable])
        summary[name] = {
            "median_leak": float(np.median(leak)),
            "quartiles": np.quantile(leak, [0.25, 0.75]).tolist(),
            "share_leaking_over_half": float(np.mean(leak > 0.5)),
            "median_gap_nats": float(np.median([r["masked"][name] - r["v_removed"] for r in usable])),
        }
    return summary


def markdown(results: dict) -> str:
    s = results["summary"]
    lines = [
        "# Leak of each masking on the oracle LFM2-Audio model",
        "",
        f"Machine: {results['machine']}. Command: `{results['command']}`. {s['n']} held-out utterances "
        f"({s['n_usable']} where the slot word is worth > 0.5 nats to the answer; median worth "
        f"{s['median_gain_nats']:.2f} nats).",
        "",
        "leak = (v_masked - v_removed) / (v_full - v_removed): the share of the slot word's evidence for the answer "
        "that survives masking it (0 = as absent as re-synthesising the sentence without it).",
        "",
        "| masking | median leak (IQR) | utterances leaking > 0.5 | median v_masked - v_removed (nats) |",
        "|---|---|---|---|",
    ]
    for name, row in s.items():
        if not isinstance(row, dict):
            continue
        q = row["quartiles"]
        lines.append(f"| {name} | {row['median_leak']:.3f} ({q[0]:.2f} to {q[1]:.2f}) | "
                     f"{row['share_leaking_over_half']:.3f} | {row['median_gap_nats']:+.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="work_data/tasks/heldout")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--model", default=None, help="an oracle model folder (default: the shipped sgpa-lfm2-oracle)")
    parser.add_argument("--out", default=str(RESULTS / "masking_leak"))
    args = parser.parse_args(argv)

    import soundfile
    import torch

    import sgpa
    from sgpa.corpus.generate import synthesizer

    torch.set_num_threads(2)
    backend = sgpa.load_backend(args.model, "lfm2-audio")
    aligner = sgpa.load_aligner()
    corpus = Path(args.corpus)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    started, records = time.perf_counter(), []
    for row in rows[: args.n]:
        waveform, _ = soundfile.read(corpus / row["audio"], dtype="float32")
        item = {"id": row["id"], "text": row["text"], "voice": row["voice"], "waveform": waveform}
        record = measure(backend, aligner, item, synthesizer(row["engine"]))
        if record is not None:
            record["voice"] = f"{row['engine']}:{row['voice']}"
            records.append(record)
    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "command": "python benchmarks/masking_leak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": backend.model_id, "model_revision": backend.revision,
        "summary": summarise(records), "records": records, "seconds": time.perf_counter() - started,
    }
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
