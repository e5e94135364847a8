import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from cxrvae import figures as F
from cxrvae.figures import data as DF


@pytest.fixture
def imgs():
    return np.random.default_rng(0).random((10, 16, 16))


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def _tiles(fig):
    """The one axes of a grid of images: its canvas, and the (y, x) corner of each tile."""
    (ax,) = _image_axes(fig)
    canvas = np.ma.getdata(ax.images[0].get_array())
    corners = [(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches]
    return ax, canvas, corners


def _assert_drawn(canvas, corners, images):
    """Each image lies, pixel for pixel, in its framed tile of the canvas."""
    assert len(corners) == len(images)
    for (y, x), img in zip(corners, images):
        h, w = img.shape
        np.testing.assert_array_equal(canvas[y : y + h, x : x + w], img.astype(np.float32))


def test_plot_image_grid_draws_every_image_in_its_tile_with_its_title(imgs):
    fig = F.plot_image_grid(imgs, [f"img {i}" for i in range(10)], ncols=4, title="grid")
    assert isinstance(fig, Figure)
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, imgs)
    assert len({y for y, _ in corners}) == 3 and len({x for _, x in corners}) == 4
    assert [t.get_text() for t in ax.texts] == [f"img {i}" for i in range(10)]
    assert np.isnan(canvas).any()  # the gaps and the two missing tiles are blank
    assert fig._suptitle.get_text() == "grid"


def _history(seed: int, epochs: int = 10) -> dict:
    """A history whose every column is different."""
    rng = np.random.default_rng(seed)
    h = {"epoch": np.arange(1, epochs + 1)}
    for split in ("train", "test"):
        for k in ("loss", "bce", "kl"):
            h[f"{split}_{k}"] = np.sort(rng.random(epochs))[::-1] * 100
    return h


def test_plot_history_three_panels_with_labels():
    h = _history(0)
    fig = F.plot_history(h, "latent 4")
    assert len(fig.axes) == 3
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in fig.axes)
    for ax, key in zip(fig.axes, ("loss", "bce", "kl")):  # each panel its own columns
        train, test = ax.lines
        assert (train.get_label(), test.get_label()) == ("train", "test")
        np.testing.assert_array_equal(train.get_xdata(), h["epoch"])
        np.testing.assert_array_equal(train.get_ydata(), h[f"train_{key}"])
        np.testing.assert_array_equal(test.get_ydata(), h[f"test_{key}"])
    assert fig._suptitle.get_text() == "latent 4"


def test_plot_history_comparison_one_line_per_model():
    histories = {4: _history(4), 16: _history(16, epochs=7), 32: _history(32)}
    fig = F.plot_history_comparison(histories)
    assert len(fig.axes) == 3
    for ax, key in zip(fig.axes, ("loss", "bce", "kl")):
        assert [line.get_label() for line in ax.lines] == ["latent 4", "latent 16", "latent 32"]
        for line, h in zip(ax.lines, histories.values()):  # each model's own test curve
            np.testing.assert_array_equal(line.get_xdata(), h["epoch"])
            np.testing.assert_array_equal(line.get_ydata(), h[f"test_{key}"])
        assert len({to_hex(line.get_color()) for line in ax.lines}) == 3


def test_plot_reconstructions_rows(imgs):
    recon = imgs[::-1]
    fig = F.plot_reconstructions(imgs, {"latent 4": recon, "latent 16": recon})
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, [*imgs, *recon, *recon])
    assert [t.get_text() for t in ax.texts] == ["original", "latent 4", "latent 16"]


def test_plot_maps_same_colours_in_both_panels():
    rng = np.random.default_rng(0)
    cats = np.repeat([0, 1, 2], 10)
    fig = F.plot_maps(
        rng.random((30, 2)),
        rng.random((30, 2)),
        cats,
        ["a", "b", "c"],
        "maps",
        pca_variance=np.array([0.5, 0.25]),
    )
    left, right = fig.axes
    assert "50.0%" in left.get_xlabel() and "25.0%" in left.get_ylabel()
    colours = [[tuple(c.get_facecolor()[0]) for c in ax.collections] for ax in (left, right)]
    assert colours[0] == colours[1] and len(set(colours[0])) == 3


def test_plot_interpolation_panels(imgs):
    t = np.linspace(0, 1, 9)
    path = np.random.default_rng(1).random((9, 16, 16))
    fig = F.plot_interpolation(
        t, path, imgs[:2], path[[0, -1]], "axis", features={"brightness": path.mean((1, 2))}
    )
    ax, canvas, corners = _tiles(fig)
    titles = [t.get_text() for t in ax.texts]
    assert len(titles) == 13  # 9 decoded + 2 originals + 2 reconstructions
    _assert_drawn(canvas, corners, [imgs[0], path[0], path[-1], imgs[1], *path])
    assert "t = 0.000" in titles and "t = 0.125" in titles and "t = 1.000" in titles
    assert any(ax.get_xlabel().startswith("t") for ax in fig.axes if not ax.images)


def test_plot_cluster_gallery_sizes_in_labels(imgs):
    fig = F.plot_cluster_gallery([imgs[:8], imgs[:3]], [120, 3])
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, [*imgs[:8], *imgs[:3]])
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["cluster 0\n(n=120)", "cluster 1\n(n=3)"]
    frames = [to_hex(p.get_edgecolor()) for p in ax.patches]
    assert frames == [F.color(0)] * 8 + [F.color(1)] * 3  # each image framed in its colour


def test_plot_silhouette_marks_choice():
    fig = F.plot_silhouette({2: 0.3, 3: 0.5, 4: 0.4}, 3)
    assert "K = 3" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_data_figures_have_titles_and_labels(imgs):
    fig = DF.plot_mean_std(imgs.mean(0), imgs.std(0))
    assert fig.axes[0].get_title() == "Mean image"
    fig = DF.plot_intensity_histogram(np.linspace(0, 1, 11), np.arange(10))
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel()
    fig = DF.plot_brightness_contrast(
        np.random.rand(20), np.random.rand(20), np.arange(20) % 2, ["normal", "pneumonia"]
    )
    assert "normal (n=10)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    fig = DF.plot_typical_atypical(imgs[:4], imgs[4:7], np.arange(4), np.arange(3))
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, [*imgs[:7]])  # the 8th tile is blank
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"d = {d:.1f}" for d in (0, 1, 2, 3, 0, 1, 2)] + [
        "most typical",
        "most atypical",
    ]


def test_effect_sizes_feature_histograms_and_duplicate_pairs(imgs):
    fig = DF.plot_effect_sizes(["a", "b", "c"], [0.2, -1.5, 0.9], "normal", "pneumonia")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "c", "b"]  # by |d|
    assert "pneumonia minus normal" in ax.get_xlabel()
    long = ["central brightness (spine, heart and mediastinum against the lungs)", "b", "c"]
    fig = DF.plot_effect_sizes(long, [0.2, -1.5, 0.9], "normal", "pneumonia")
    fig.canvas.draw()
    label, page = fig.axes[0].xaxis.label.get_window_extent(), fig.bbox
    assert page.x0 <= label.x0 and label.x1 <= page.x1  # the axis label is not cut off
    fig = DF.plot_feature_histograms({"x": np.random.rand(30), "y": np.random.rand(30)})
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "x"
    fig = DF.plot_duplicate_pairs(imgs[:3], imgs[3:6], [0.0, 0.01, 0.02], [True, False, False], 7)
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, [*imgs[:6]])  # each image above its twin
    assert "7 near-identical pairs" in fig._suptitle.get_text()
    assert ax.texts[0].get_text() == "RMS 0.000\ntrain / test"
    fig = DF.plot_duplicate_pairs(imgs[:1], imgs[1:2], [0.0], [False], 1)
    assert fig._suptitle.get_text() == "1 near-identical pair"


def test_model_reference_figures(imgs):
    fig = F.plot_rate_distortion({4: 8.0, 16: 20.0}, {4: 100.0, 16: 60.0}, {4: 120.0, 16: 50.0})
    assert len(fig.axes) == 2 and "KL" in fig.axes[0].get_xlabel()
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()][1].startswith("PCA")
    grid = np.stack([imgs[:3], imgs[3:6]])  # (2 dims, 3 steps, H, W)
    fig = F.plot_traversal(grid, ["z1", "z4"], [-3, 0, 3])
    ax, canvas, corners = _tiles(fig)
    _assert_drawn(canvas, corners, [*imgs[:6]])
    assert [t.get_text() for t in ax.texts] == ["-3 SD", "+0 SD", "+3 SD", "z1", "z4"]
    fig = F.plot_path_probability(np.linspace(0, 1, 5), {"PCA 1": np.linspace(0.1, 0.9, 5)},
                                  "pneumonia")  # fmt: skip
    assert fig.axes[0].get_ylim() == (-0.02, 1.02) and "pneumonia" in fig.axes[0].get_ylabel()


def test_save_figure_writes_png(tmp_path, imgs):
    F.save_figure(F.plot_image_grid(imgs), tmp_path / "a" / "grid.png")
    assert (tmp_path / "a" / "grid.png").read_bytes()[:4] == b"\x89PNG"
