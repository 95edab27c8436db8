"""plots: overlays, boxes and grids draw what they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medtask.data import load  # noqa: E402
from medtask.reporting import plots  # noqa: E402


def test_overlay_colours_only_the_mask():
    fig, ax = plt.subplots()
    img = torch.zeros(3, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.int64)
    mask[2:4, 2:4] = 1
    plots.overlay_mask(ax, img, mask, contour=False)
    over = ax.get_images()[1].get_array()
    assert over[3, 3, 3] > 0 and over[6, 6, 3] == 0
    plt.close(fig)


def test_draw_boxes_adds_one_rectangle_and_caption_per_box():
    fig, ax = plt.subplots()
    plots.draw_boxes(ax, torch.tensor([[1.0, 1, 4, 4], [2, 2, 6, 7]]), torch.tensor([1, 2]),
                     classes=["background", "RBC", "WBC"], scores=[0.9, 0.5])
    assert len(ax.patches) == 2 and [t.get_text() for t in ax.texts] == ["RBC 0.90", "WBC 0.50"]
    plt.close(fig)


def test_sample_grid_for_every_task():
    for name in ("phantom-polyp", "phantom-boxes", "phantom-classes"):
        ds = load(name, "val", n=5, size=32)
        fig = plots.sample_grid(ds, n=5, ncols=3, title=name)
        assert len(fig.axes) == 6 and fig.axes[0].get_title()
        plt.close(fig)
    assert plots.to_numpy_image(np.full((4, 4), 255, np.uint8)).max() == 1.0
