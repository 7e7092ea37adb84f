import numpy as np
import torch

from hw2lib.images import minmax, to_model_range, to_uint8, unit_to_uint8


def test_unit_to_uint8_rounds_as_torchvision_save_image():
    x = torch.tensor([0.0, 0.5 / 255, 1.49 / 255, 0.998, 1.2, -0.1]).view(1, 1, 1, 6)
    u8 = unit_to_uint8(x)
    # torchvision.utils.save_image: mul(255).add_(0.5).clamp_(0, 255).to(uint8)
    ref = x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    assert u8.shape == (1, 1, 6, 3)  # one channel repeated to three
    np.testing.assert_array_equal(u8[..., 0], ref[..., 0].numpy())


def test_model_range_round_trip_is_exact_on_uint8():
    u8 = np.random.default_rng(0).integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
    x = to_model_range(u8)
    assert x.shape == (4, 3, 5, 6) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_array_equal(to_uint8(x), u8)


def test_minmax_maps_each_image_to_the_unit_interval():
    x = torch.randn(3, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.1]).view(3, 1, 1, 1)
    m = minmax(x)
    assert torch.allclose(m.flatten(1).min(1).values, torch.zeros(3))
    assert torch.allclose(m.flatten(1).max(1).values, torch.ones(3))


def test_wide_grids_are_shrunk_to_the_page_column_so_labels_stay_readable():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hw2lib.viz import MAX_WIDTH_INCHES, grid_figure
    wide = np.zeros((4, 30, 28, 28, 3), np.uint8)  # the guidance sweep: 30 columns
    fig = grid_figure(wide, row_labels=[f"w = {w}" for w in range(4)])
    assert fig.get_figwidth() <= MAX_WIDTH_INCHES
    plt.close(fig)
    small = grid_figure(np.zeros((2, 6, 28, 28, 3), np.uint8), cell_inches=0.5)
    assert small.get_figwidth() == 6 * 0.5 + 0.6  # a narrow grid keeps its cell size
    plt.close(small)
