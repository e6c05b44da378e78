"""Real explanation games, enumerated once: the shipped CTC recogniser on held-out utterances, every coalition.

``real_ctc_games`` aligns each utterance with the shipped model (onto its own 20 ms grid, as ``sgpa explain`` does),
prepares the CTC backend's game and evaluates all ``2**n`` coalitions. The tables are cached under
``work_data/real_games/`` (keyed by utterance, masking, normalisation and the recogniser's revision), so the
benchmarks that need exact answers on real games — masking faithfulness, interval coverage, estimator accuracy —
pay for the model only once.

Utterances: the held-out voices of the corpus (festival slt, flite slt, espeak f3) and the held-out real recordings
(pocketsphinx-testdata), with 4 to ``max_words`` words, in id order.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "work_data" / "real_games"


def heldout_utterances(corpus: Path, per_voice: int, max_words: int, min_words: int = 4) -> list[dict]:
    """Up to ``per_voice`` held-out utterances per voice (and per real source) with ``min_words..max_words`` words."""
    from sgpa.training.data import read_manifest

    chosen: dict[str, list[dict]] = {}
    for entry in sorted(read_manifest(corpus), key=lambda e: e["id"]):
        n_words = len(entry["text"].split())
        if entry.get("split") != "heldout" or not min_words <= n_words <= max_words:
            continue
        group = f"{entry.get('engine', '?')}:{entry.get('voice', '?')}"
        if entry.get("engine") not in ("festival", "flite", "espeak"):
            group = f"real:{entry.get('engine', '?')}"
        if len(chosen.setdefault(group, [])) < per_voice:
            chosen[group].append({"id": entry["id"], "text": entry["text"], "wav": entry["wav"], "group": group})
    return [item for group in sorted(chosen) for item in chosen[group]]


def exact_table(backend, item: dict, masking: str, normalization: str) -> dict:
    """Align ``item`` and evaluate its game on every coalition (row ``m``: the players in the bits of ``m``)."""
    import sgpa
    from sgpa.attribution.estimators.result import all_coalitions

    segmentation = sgpa.align(item["wav"], item["text"], aligner=backend.acoustic_model, grid="wav2vec2")
    waveform, _ = sgpa.api.read_waveform(item["wav"])
    game = backend.prepare(waveform, segmentation, masking=masking, normalization=normalization)
    started = time.perf_counter()
    table = game.log_probs(all_coalitions(game.n_players))
    return {
        "id": item["id"], "group": item["group"], "text": item["text"], "players": game.player_names,
        "masking": masking, "normalization": normalization, "table": table,
        "seconds": time.perf_counter() - started,
    }


def real_ctc_games(
    corpus: Path,
    per_voice: int = 4,
    max_words: int = 9,
    masking: str = "silence",
    normalization: str = "frozen",
    min_words: int = 4,
) -> list[dict]:
    """Exact tables of real CTC games (see the module docstring), from the cache where present."""
    return cached_tables(heldout_utterances(corpus, per_voice, max_words, min_words), masking, normalization)


def cached_tables(items: list[dict], masking: str = "silence", normalization: str = "frozen") -> list[dict]:
    """Exact tables of the games of ``items`` (dicts with id, text, wav, group), enumerated once and cached."""
    import torch

    import sgpa

    torch.set_num_threads(2)
    backend = sgpa.load_backend()
    # keyed by the recogniser's revision too: a retrained shipped model makes other games (the v3 model's were
    # 2-3x harder for every estimator than v2's), which a cache keyed by utterance alone would silently mix up
    revision = backend.acoustic_model.revision.split(":")[-1][:12]
    games = []
    CACHE.mkdir(parents=True, exist_ok=True)
    for item in items:
        path = CACHE / f"{item['id']}.{masking}.{normalization}.{revision}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                games.append({**meta, "table": stored["table"]})
            continue
        game = exact_table(backend, item, masking, normalization)
        meta = {key: value for key, value in game.items() if key != "table"}
        np.savez(path, table=game["table"], meta=json.dumps(meta))
        print(f"  {item['id']} ({len(game['players'])} words, {normalization}): {game['seconds']:.1f} s", flush=True)
        games.append(game)
    return games
