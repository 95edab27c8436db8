"""Figures of Study B (AngioQANet) beyond the shared ones of :mod:`medtask.reporting.plots`."""

from __future__ import annotations

import matplotlib.pyplot as plt


def angio_protocol_examples(sources, versions, n_sources: int = 3, grades=("good", "fair", "poor")):
    """Rows of source images followed by their degraded versions (title: grade and faults)."""
    chosen = sources[:n_sources]
    per = max(sum(v["source"] == chosen[0]["id"] for v in versions), 1)
    fig, axes = plt.subplots(len(chosen), per + 1, figsize=(1.9 * (per + 1), 2.0 * len(chosen)), squeeze=False)
    for r, s in enumerate(chosen):
        axes[r, 0].imshow(s["image"][0], cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(f"{s['id']}\nsource", fontsize=7)
        mine = [v for v in versions if v["source"] == s["id"]]
        for c, v in enumerate(mine[:per]):
            axes[r, c + 1].imshow(v["image"][0], cmap="gray", vmin=0, vmax=1)
            axes[r, c + 1].set_title(f"{grades[v['label']]}\n{v['faults'] or '-'}", fontsize=7)
    for a in axes.flat:
        a.axis("off")
    fig.tight_layout()
    return fig
