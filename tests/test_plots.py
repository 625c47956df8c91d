"""Shared figures draw what they are given."""

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from rattrlib.plots import plot_attribution_grid  # noqa: E402


def test_grid_has_one_column_per_image_and_one_row_per_map():
    images = torch.rand(3, 1, 8, 8)
    maps = {"saliency": torch.rand(3, 8, 8), "IG": torch.rand(3, 8, 8)}
    fig = plot_attribution_grid(images, maps, titles=["a", "b", "c"])
    axes = fig.axes
    assert len(axes) == 9
    assert [ax.get_ylabel() for ax in axes[::3]] == ["image", "saliency", "IG"]
    assert axes[1].get_title() == "b"
    assert (axes[4].images[0].get_array() == maps["saliency"][1].numpy()).all()
