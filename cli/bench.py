"""``sgpa bench``: evaluation cost at matched accuracy, concentration and faithfulness over a dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.core import ParameterSource

from sgpa.attribution.bench import PLAYER_SETS, BenchConfig, with_quick
from sgpa.attribution.models import BACKENDS
from sgpa.attribution.models.base import NORMALIZATIONS
from sgpa.cli.common import EXIT_BAD_INPUT, reports_input_errors
from sgpa.errors import InputError

_DEFAULTS = BenchConfig()


@click.command("bench")
@click.option("-m", "--manifest", type=click.Path(path_type=Path), default=None,
              help="JSONL/CSV manifest: audio, transcript, optional id, prompt, answer_word (index of the answer word).")
@click.option("--dataset", default=None,
              help="Instead of --manifest: a Hugging Face dataset (a save_to_disk folder, or a hub id with a network).")
@click.option("--split", default=None, help="--dataset: the split (needed when it has several).")
@click.option("--audio-column", default="audio", show_default=True, help="--dataset: the audio column.")
@click.option("--text-column", default="text", show_default=True, help="--dataset: the transcript column.")
@click.option("--id-column", default=None, help="--dataset: a column of utterance ids (default: the row index).")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), required=True,
              help="Report folder; rerunning with the same folder resumes (finished utterances are skipped).")
@click.option("--model", default=None,
              help="Local folder or hub id. Default: the backend's shipped model (sgpa-ctc-en; sgpa-lfm2-oracle for lfm2-audio).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None, help="Default: detected from --model.")
@click.option("--align-model", default=None, help="CTC model for alignment. Default: the shipped one.")
@click.option("--masking", default=None, help="As for `sgpa explain` (default: the backend's).")
@click.option("--normalization", type=click.Choice(NORMALIZATIONS), default=None, help="As for `sgpa explain`.")
@click.option("--prompt", default=None, help="Prompt for chat models when the manifest row has none.")
@click.option("--player-sets", default=",".join(_DEFAULTS.player_sets), show_default=True,
              help=f"Comma-separated, from {', '.join(PLAYER_SETS)} (words is required).")
@click.option("--epsilon", "epsilons", type=float, multiple=True, help="Relative L2 error(s); default 0.05 and 0.01.")
@click.option("--seeds", type=int, default=_DEFAULTS.seeds, show_default=True)
@click.option("--max-budget-per-player", type=int, default=_DEFAULTS.max_budget_per_player, show_default=True,
              help="The budget ladder runs from 2 n to this times n evaluations.")
@click.option("--reference-budget-per-player", type=int, default=_DEFAULTS.reference_budget_per_player,
              show_default=True, help="Budget (times n) of the non-exact reference.")
@click.option("--exact-cap", type=int, default=_DEFAULTS.exact_cap, show_default=True,
              help="The reference is exact when 2^n is at most this.")
@click.option("--text-players", is_flag=True,
              help="Chat models: also explain words + prompt words jointly and report A-SHAP and Generative SHAP.")
@click.option("--response-windows", type=int, default=_DEFAULTS.response_windows, show_default=True,
              help="--text-players: windows of the response for Generative SHAP.")
@click.option("--limit", type=int, default=None, help="Only the first N utterances of the manifest.")
@click.option("--quick", is_flag=True, help="Small ladders, 2 seeds, a cheap reference (for tests and CI).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: in this process; ray: utterances as Ray tasks, one model per worker (pip install ray).")
@click.option("--workers", type=int, default=None, help="--executor ray: actors (default: one per two cluster CPUs).")
@click.option("--ray-address", default=None,
              help="--executor ray: an existing cluster ('auto', 'ray://host:10001'); default: start a local one.")
@click.option("--allow-outside", is_flag=True,
              help="Let manifest rows name files outside the manifest's folder (refused by default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@reports_input_errors
def bench(manifest: Path | None, dataset: str | None, split: str | None, audio_column: str, text_column: str,
          id_column: str | None, output_dir: Path, model: str | None, backend: str | None, align_model: str | None,
          masking: str | None, normalization: str | None, prompt: str | None, player_sets: str,
          epsilons: tuple[float, ...], seeds: int, max_budget_per_player: int, reference_budget_per_player: int,
          exact_cap: int, text_players: bool, response_windows: int, limit: int | None, quick: bool, device: str,
          executor: str, workers: int | None, ray_address: str | None, allow_outside: bool, quiet: bool) -> None:
    """Explain every utterance of a manifest or dataset under several player sets and write a report folder.

    Writes utterances.jsonl (one line per finished utterance), results.json, report.md and PNG plots into
    the output folder. A bad input is listed and skipped (exit code 2 at the end); finished utterances are kept.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from sgpa.api import load_aligner, load_backend
    from sgpa.attribution.bench import items_from_dataset, items_from_manifest, run_bench
    from sgpa.attribution.bench_report import write_report

    sizes = {"seeds": seeds, "exact_cap": exact_cap, "max_budget_per_player": max_budget_per_player,
             "reference_budget_per_player": reference_budget_per_player}
    if quick:  # the preset's sizes, where the option was not given on the command line
        context = click.get_current_context()
        preset = with_quick(_DEFAULTS)
        sizes = {name: getattr(preset, name) if context.get_parameter_source(name) == ParameterSource.DEFAULT
                 else value for name, value in sizes.items()}
    config = BenchConfig(
        player_sets=tuple(name.strip() for name in player_sets.split(",") if name.strip()),
        epsilons=tuple(epsilons) or _DEFAULTS.epsilons, masking=masking, normalization=normalization,
        random_orders=with_quick(_DEFAULTS).random_orders if quick else _DEFAULTS.random_orders,
        text_players=text_players, response_windows=response_windows, **sizes,
    ).validate()
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, not {limit}")
    if (manifest is None) == (dataset is None):
        raise InputError("give exactly one of --manifest and --dataset")
    if manifest is not None:
        items, failures = items_from_manifest(manifest, allow_outside)
    else:
        items, failures = items_from_dataset(dataset, split=split, audio_column=audio_column,
                                             text_column=text_column, id_column=id_column)
    source = str(manifest) if manifest is not None else dataset
    if not items:
        raise InputError(f"{source}: no usable row ({len(failures)} failed; the first: {failures[0][1]})"
                         if failures else f"{source}: no rows")
    for where, message in failures:
        print(f"sgpa: error: {message}", file=sys.stderr)
    items = items[:limit] if limit is not None else items
    if prompt is not None:
        items = [item if item.prompt else replace(item, prompt=prompt) for item in items]
    explainer = load_backend(model, backend, device=device)
    if text_players and explainer.name == "ctc":
        raise InputError("--text-players needs a chat model with a prompt (--backend lfm2-audio), not the CTC recogniser")
    aligner = explainer.acoustic_model if explainer.name == "ctc" and align_model is None else load_aligner(
        align_model, device)
    meta = {"model": explainer.model_id, "revision": explainer.revision, "backend": explainer.name,
            "masking": explainer.check_masking(masking), "normalization": normalization or "frozen",
            "manifest": str(manifest) if manifest is not None else None, "dataset": dataset, "split": split}
    bar = tqdm(total=len(items), unit="utt", desc="sgpa bench", file=sys.stderr, disable=quiet)

    def on_progress(item, record, message):
        bar.update(1)
        if record is None:
            bar.write(f"sgpa: error: {item.id}: {message}", file=sys.stderr)

    if executor == "ray":
        from sgpa.attribution.bench_ray import ModelSpec, run_bench_ray

        spec = ModelSpec(model=model, backend=explainer.name, align_model=align_model, device=device)
        run, bench_failures = run_bench_ray(items, spec, config, output_dir, meta, workers=workers,
                                            address=ray_address, on_progress=on_progress)
    else:
        run, bench_failures = run_bench(items, explainer, aligner, config, output_dir, meta, on_progress=on_progress)
    bar.close()
    failures = failures + bench_failures
    order = {item.id: index for index, item in enumerate(items)}  # the report reads utterances in manifest order
    records = sorted(run.records(), key=lambda record: order.get(record["id"], len(order)))
    write_report(output_dir, records, config, meta, failures)
    if not quiet:
        click.echo(f"{len(records)} utterances in {output_dir / 'report.md'}", err=True)
    if failures:
        print(f"sgpa: error: {len(failures)} of {len(items) + len(failures) - len(bench_failures)} inputs failed: "
              + ", ".join(name for name, _ in failures), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
