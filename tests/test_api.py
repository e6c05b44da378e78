"""The notebook API (``import sgpa``): the README's Python section runs as written, and the API's own contracts.

The README's first block runs unchanged on the shipped model and a shipped sample; its LFM2-Audio block runs with
the hub id replaced by a tiny random LFM2-Audio checkpoint saved to a temporary folder (no network here).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest_lfm2 import tiny_lfm2_dir  # noqa: F401

import sgpa

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples" / "slt_0001.wav"
SAMPLE_TEXT = "please call me at 5 pm"


def readme_python_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### From Python") : readme.index("## The shipped default acoustic model")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def run_block(code: str, namespace: dict, tmp_path: Path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)  # the block writes its files into the working directory
    exec(compile(code.replace("data_samples/", f"{ROOT}/data_samples/"), "README.md", "exec"), namespace)
    return namespace


def test_importing_sgpa_loads_nothing_heavy():
    code = (
        "import sys, sgpa; sgpa.AlignConfig; sgpa.Segmentation; "
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'librosa', 'liquid_audio', 'shap') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_readme_first_block_aligns_explains_and_plots_in_three_calls(tmp_path, monkeypatch):
    import matplotlib

    backend_before = matplotlib.get_backend()
    ns = run_block(readme_python_blocks()[0], {}, tmp_path, monkeypatch)
    seg, exp, fig = ns["seg"], ns["exp"], ns["fig"]
    calls = [line for line in readme_python_blocks()[0].splitlines() if line.startswith(("seg =", "exp =", "fig ="))]
    assert len(calls) == 3
    assert [w.text for w in seg.words] == SAMPLE_TEXT.split()
    assert exp.n_players == 6 and exp.method == "exact" and exp.stderr is None
    assert exp.cost.n_evaluations == 2**6
    assert exp.efficiency_gap_total < 1e-6
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure) and isinstance(seg.plot(), Figure)
    assert matplotlib.get_backend() == backend_before  # no process-wide matplotlib.use
    shap_values = exp.to_shap()
    np.testing.assert_allclose(shap_values.values, exp.phi_total)
    assert (tmp_path / "slt_0001.TextGrid").is_file()
    assert sgpa.Segmentation.load(tmp_path / "slt_0001.segments.json") == seg


def test_readme_lfm2_block_with_a_local_checkpoint(tiny_lfm2_dir, tmp_path, monkeypatch):  # noqa: F811
    code = readme_python_blocks()[1].replace('"LiquidAI/LFM2-Audio-1.5B"', repr(str(tiny_lfm2_dir)))
    code = code.replace('device="cpu")', 'device="cpu", max_new_tokens=3)')
    clips = [(str(SAMPLE), SAMPLE_TEXT)]
    ns = run_block(code, {"sgpa": sgpa, "clips": clips}, tmp_path, monkeypatch)
    exp = ns["exp"]
    assert exp.model["backend"] == "lfm2-audio" and exp.prompt == "Which colour was mentioned?"
    assert exp.n_players == 6 and exp.efficiency_gap_total < 1e-6
    assert (Path(f"{SAMPLE}.explanation.json")).is_file()
    Path(f"{SAMPLE}.explanation.json").unlink()
    assert sgpa.load_backend(str(tiny_lfm2_dir), device="cpu", max_new_tokens=3) is ns["backend"]  # kept, not reloaded


def test_readme_word_times_block_builds_a_segmentation_that_explains(tmp_path, monkeypatch):
    seg = run_block(readme_python_blocks()[2], {"sgpa": sgpa}, tmp_path, monkeypatch)["seg"]
    assert [w.text for w in seg.words] == SAMPLE_TEXT.split()
    assert seg.model.id == "mfa" and seg.words[0].start == pytest.approx(0.16)
    assert seg.words[-1].end == pytest.approx(1.95)
    assert [c.kind for c in seg.context] == ["leading", "trailing"]
    assert set(seg.grid.owner) == {-1, 0, 1, 2, 3, 4, 5}
    exp = sgpa.explain(SAMPLE, seg, estimator="loo")
    assert exp.n_players == 6 and exp.index == "loo"


def test_word_times_gaps_are_cut_at_their_midpoint_and_bad_times_are_refused():
    seg = sgpa.Segmentation.from_word_times(SAMPLE, [("a", 0.2, 0.4), ("b", 0.6, 0.9)], grid="whisper")
    assert seg.words[0].end == pytest.approx(0.5) and seg.words[1].start == pytest.approx(0.5)
    assert (seg.words[0].ctc_start, seg.words[0].ctc_end) == (0.2, 0.4)
    with pytest.raises(sgpa.InputError, match="before the previous word ends"):
        sgpa.Segmentation.from_word_times(SAMPLE, [("a", 0.2, 0.6), ("b", 0.5, 0.9)])
    with pytest.raises(sgpa.InputError, match="after the audio"):
        sgpa.Segmentation.from_word_times(SAMPLE, [("a", 0.2, 9.0)])
    with pytest.raises(sgpa.InputError, match="start < end"):
        sgpa.Segmentation.from_word_times(SAMPLE, [{"word": "a", "start": 0.5, "end": 0.5}])


def test_a_transcript_is_aligned_onto_the_backends_grid_and_other_audio_is_refused():
    exp = sgpa.explain(SAMPLE, SAMPLE_TEXT, estimator="loo")
    assert exp.details["evaluation_cost"]["n_native_token_players"] == pytest.approx(np.ceil(2.095 / 0.02), abs=1)
    seg = sgpa.align(SAMPLE, SAMPLE_TEXT)
    with pytest.raises(sgpa.InputError, match="different audio"):
        sgpa.explain(ROOT / "data_samples" / "slt_0000.wav", seg)


def test_align_config_is_validated_and_overridden_by_keywords():
    assert sgpa.AlignConfig().with_overrides(grid="whisper").grid == "whisper"
    with pytest.raises(sgpa.InputError, match="unknown alignment setting"):
        sgpa.AlignConfig().with_overrides(gird="whisper")
    for bad in ({"alpha": float("nan")}, {"padding_s": -1.0}, {"max_players": 0}, {"grid": "hubert"}):
        with pytest.raises(sgpa.InputError):
            sgpa.AlignConfig(**bad).validate()
    seg = sgpa.align(SAMPLE, SAMPLE_TEXT, grid="whisper", max_players=3)
    assert seg.grid.token_duration_s == 0.02 and seg.n_words == 3
    assert sgpa.load_aligner() is sgpa.load_aligner(None)


def test_a_sampled_explanation_without_error_estimate_round_trips_as_json_nulls(tmp_path):
    import json

    seg = sgpa.align(SAMPLE, SAMPLE_TEXT)
    exp = sgpa.explain(SAMPLE, seg, estimator="permutation", budget=12)  # 6 words: one antithetic pair
    assert exp.stderr_note and np.isnan(exp.stderr_total).all()
    path = exp.save(tmp_path / "e.json")
    data = json.loads(path.read_text())  # strict JSON: no NaN tokens
    assert data["stderr_total"] == [None] * 6 and data["stderr_note"] == exp.stderr_note
    again = sgpa.Explanation.load(path)
    assert np.isnan(again.stderr_total).all() and again.stderr_note == exp.stderr_note
    assert again.plot() is not None  # the figure copes with missing error bars

    sampled = sgpa.explain(SAMPLE, seg, estimator="kernel", budget=40)
    low, high = sampled.interval()
    assert np.all(low <= sampled.phi_total) and np.all(sampled.phi_total <= high)
    assert sampled.stderr_dof >= 1 and sgpa.Explanation.load(sampled.save(tmp_path / "k.json")).stderr_dof == \
        sampled.stderr_dof
