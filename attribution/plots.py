"""Pictures of an explanation: the spectrogram with each word shaded by its attribution, and a bar chart.

Red means the word's audio raised the log-probability of the reference response, blue that it lowered it; the
colour scale is symmetric around zero so that equal magnitudes look equal. Figures are matplotlib ``Figure``
objects built without pyplot (no ``matplotlib.use``): a notebook keeps its backend and shows the returned figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sgpa.attribution.explanation import Explanation
from sgpa.io import atomic_write


def log_mel_db(audio: np.ndarray, sample_rate: int, hop_length: int = 160, n_mels: int = 80) -> np.ndarray:
    """Log-mel spectrogram in dB (``(n_mels, n_frames)``), 25 ms windows, ``hop_length`` samples apart."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=int(0.025 * sample_rate) * 2,
        win_length=int(0.025 * sample_rate), hop_length=hop_length, n_mels=n_mels,
    )
    return librosa.power_to_db(mel, ref=np.max(mel) if mel.size and np.max(mel) > 0 else 1.0)


def explanation_figure(explanation: Explanation, audio: np.ndarray, sample_rate: int) -> Any:
    """A matplotlib figure: spectrogram with words shaded by phi (top), phi per word with error bars (bottom)."""
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    phi = np.asarray(explanation.phi_total, dtype=float)
    limit = float(np.max(np.abs(phi))) if phi.size and np.max(np.abs(phi)) > 0 else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    cmap = matplotlib.colormaps["coolwarm"]
    hop_length = max(1, sample_rate // 100)
    duration_s = len(audio) / sample_rate

    fig = Figure(figsize=(max(8.0, 1.2 * explanation.n_players), 6.5))
    ax_spec, ax_bar = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    spec = log_mel_db(audio, sample_rate, hop_length=hop_length)
    ax_spec.imshow(spec, origin="lower", aspect="auto", cmap="gray_r", extent=(0, duration_s, 0, spec.shape[0]))
    for player, value in zip(explanation.players, phi, strict=True):
        if player.kind != "word":
            continue
        ax_spec.axvspan(player.start_s, player.end_s, color=cmap(norm(value)), alpha=0.45, linewidth=0)
        ax_spec.axvline(player.start_s, color="k", linewidth=0.5)
        ax_spec.text((player.start_s + player.end_s) / 2, spec.shape[0] * 0.97, player.name, ha="center", va="top",
                     fontsize=9, bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1})
    ax_spec.set_xlim(0, duration_s)
    ax_spec.set_xlabel("time (s)")
    ax_spec.set_ylabel("mel band")
    response = explanation.response.get("text", "")
    title = f"{explanation.model['backend']} · {explanation.method} {explanation.index}"
    if explanation.prompt:
        title += f" · prompt: {explanation.prompt!r}"
    ax_spec.set_title(title + (f"\nresponse: {response[:80]!r}" if response else ""), fontsize=9)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax_spec, label="φ (log-prob)", pad=0.01)

    positions = np.arange(explanation.n_players)
    interval = explanation.interval(0.95)
    errors = None if interval is None else np.nan_to_num(interval[1] - phi, nan=0.0)  # t-quantile half-widths
    bars = ax_bar.bar(positions, phi, color=[cmap(norm(v)) for v in phi], edgecolor="k", linewidth=0.5,
                      yerr=errors, capsize=3 if errors is not None else 0)
    for bar, player in zip(bars, explanation.players, strict=True):
        if player.kind == "text":
            bar.set_hatch("//")  # prompt words (joint audio + text game)
    ax_bar.axhline(0, color="k", linewidth=0.5)
    ax_bar.set_xticks(positions, [p.name for p in explanation.players], rotation=30, ha="right")
    ax_bar.set_ylabel("φ, summed over response tokens")
    gap = explanation.efficiency_gap_total
    share = explanation.details.get("audio_share")
    ax_bar.set_title((f"audio share A-SHAP {share:.2f} (hatched: prompt words) · " if share is not None else "") +
        f"v(∅) = {explanation.v_empty_total:.3f}, v(N) = {explanation.v_full_total:.3f}, efficiency gap {gap:.1e}, "
        f"{explanation.cost.n_evaluations} evaluations" + (" (bars: 95% CI)" if errors is not None else "") +
        (" · no error estimate" if explanation.stderr_note else ""),
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def save_explanation_plot(explanation: Explanation, audio: np.ndarray, sample_rate: int, path: str | Path) -> Path:
    """Write :func:`explanation_figure` as a PNG, atomically."""
    fig = explanation_figure(explanation, audio, sample_rate)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
