"""Every reading that each array shape allows, at the edges of what counts as an image, what
each reading says in words, and the grayscale images each gives."""

import numpy as np
import pytest

from cxrvae.data import layouts
from cxrvae.data.layouts import Reading, choose, readings, stack_readings, to_images
from cxrvae.data.pixels import LUMA
from cxrvae.errors import DataError


def _found(shape):
    return [(r.layout, r.channel_axis) for r in stack_readings("x", shape)]


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((10, 256), [("rows", None)]),  # rows of 16x16
        ((10, 225), []),  # rows of 15x15: under 16 px
        ((10, 250), []),  # not a square number of values
        ((10, 16, 16), [("nhw", None)]),
        ((10, 15, 16), []),
        ((10, 16, 15), []),
        ((5, 16, 16, 3), [("nhwc", -1)]),
        ((5, 15, 16, 3), []),
        ((5, 16, 15, 4), []),
        ((5, 16, 16, 2), []),  # two channels is no colour model
        ((5, 3, 16, 16), [("nchw", 1)]),
        ((5, 3, 15, 16), []),
        ((5, 4, 16, 15), []),
        ((16, 48), [("image", None)]),  # three times wider than tall: still a radiograph
        ((16, 49), []),
        ((49, 16), []),
        ((15, 15), []),
        ((16, 16), [("image", None)]),  # not 16 rows of 4x4 px: too small
        ((3, 16, 16), [("nhw", None), ("image", 0)]),
        ((16, 16, 3), [("image", -1)]),
        ((1, 16, 16), [("nhw", None)]),  # one image whichever way it is read
        ((1, 16, 17), [("nhw", None)]),
        ((3, 16, 3), []),
    ],
)
def test_the_readings_of_each_shape(shape, expected):
    assert _found(shape) == expected
    assert all(r.keys == ("x",) and r.shape == shape for r in stack_readings("x", shape))


@pytest.mark.parametrize(
    "reading, hw, count, words",
    [
        (Reading("rows", ("x",), (10, 256)), (16, 16), 10,
         "array 'x' of shape (10, 256) as 10 rows of 16x16 px"),
        (Reading("nhw", ("x",), (10, 20, 30)), (20, 30), 10,
         "array 'x' of shape (10, 20, 30) as 10 images of 20x30 px"),
        (Reading("nhwc", ("x",), (5, 20, 30, 3), -1), (20, 30), 5,
         "array 'x' of shape (5, 20, 30, 3) as 5 images of 20x30 px"),
        (Reading("nchw", ("x",), (5, 3, 20, 30), 1), (20, 30), 5,
         "array 'x' of shape (5, 3, 20, 30) as 5 images of 20x30 px"),
        (Reading("image", ("x",), (20, 30)), (20, 30), 1,
         "array 'x' of shape (20, 30) as one 20x30 image"),
        (Reading("image", ("x",), (20, 30, 3), -1), (20, 30), 1,
         "array 'x' of shape (20, 30, 3) as one 20x30 image"),
        (Reading("image", ("x",), (3, 20, 30), 0), (20, 30), 1,
         "array 'x' of shape (3, 20, 30) as one 20x30 image"),
        (Reading("keys", ("a", "b", "c", "d"), (3, 20, 30), 0), (20, 30), 4,
         "4 arrays of shape (3, 20, 30) under separate keys (a, b, c, d) as one 20x30 image each"),
        (Reading("keys", tuple(f"arr_{i}" for i in range(5)), (20, 30, 4), -1), (20, 30), 5,
         "5 arrays of shape (20, 30, 4) under separate keys (arr_0 ... arr_4) as one 20x30 "
         "image each"),
    ],
)  # fmt: skip
def test_what_each_reading_gives_and_says(reading, hw, count, words):
    assert reading.hw() == hw
    assert layouts.count(reading) == count
    assert reading.describe() == words


def _arrays(**shapes):
    return {k: np.zeros(s, np.uint8) for k, s in shapes.items()}


def test_arrays_of_one_image_shape_are_one_image_each():
    found = readings(_arrays(a=(20, 30, 3), b=(20, 30, 3), c=(20, 30, 3)), set())
    assert found == [Reading("keys", ("a", "b", "c"), (20, 30, 3), -1)]
    # channels first: said as 20x30 images (it once read "one 3x20 image each")
    (found,) = readings(_arrays(arr_0=(3, 20, 30), arr_1=(3, 20, 30)), set())
    assert found.channel_axis == 0 and found.describe().endswith("as one 20x30 image each")
    assert readings(_arrays(a=(20, 30), b=(20, 30)), set()) == [
        Reading("keys", ("a", "b"), (20, 30))
    ]


def test_the_largest_array_is_read_and_images_wins_a_tie():
    found = readings(_arrays(x=(10, 256), images=(10, 16, 16)), set())
    assert found == [Reading("nhw", ("images",), (10, 16, 16))]
    found = readings(_arrays(x=(10, 256), small=(16, 16)), set())
    assert found == [Reading("rows", ("x",), (10, 256))]


def test_per_image_lengths_decide_between_readings():
    shape = {"x": (3, 16, 16)}
    assert len(readings(_arrays(**shape), set())) == 2
    assert readings(_arrays(**shape), {3}) == [Reading("nhw", ("x",), (3, 16, 16))]
    assert readings(_arrays(**shape), {1}) == [Reading("image", ("x",), (3, 16, 16), 0)]


def test_choose_names_every_reading_or_why_there_is_none(tmp_path):
    with pytest.raises(DataError) as e:
        choose("f.npz", _arrays(x=(3, 16, 16)), set(), "auto")
    assert str(e.value) == (
        "f.npz: the layout is ambiguous: array 'x' of shape (3, 16, 16) as 3 images of 16x16 px "
        "(--layout nhw); or array 'x' of shape (3, 16, 16) as one 16x16 image (--layout image); "
        "say which with --layout"
    )
    with pytest.raises(DataError) as e:
        choose("f.npz", _arrays(big=(10, 8, 20), z_small=(2, 3)), set(), "auto")
    assert str(e.value) == (
        "f.npz: array 'big' of shape (10, 8, 20) holds images of 8x20 px, smaller than the "
        "minimum 16 px"
    )
    for shape in [(10, 250), (10, 8, 8, 3)]:
        with pytest.raises(DataError) as e:
            choose("f.npz", _arrays(big=shape, z_small=(2, 3)), set(), "auto")
        assert str(e.value) == (
            f"f.npz: array 'big' of shape {shape} is not images in any layout cxrvae reads "
            "((N,H,W), (N,H,W,C), (N,C,H,W), rows of flattened square images, or one image per "
            "key; images at least 16 px)"
        )


def test_a_stated_layout_is_taken_when_it_fits():
    arrays = _arrays(x=(3, 16, 16))
    assert choose("f.npz", arrays, set(), "image") == Reading("image", ("x",), (3, 16, 16), 0)
    assert choose("f.npz", arrays, set(), "nhw") == Reading("nhw", ("x",), (3, 16, 16))
    arrays = _arrays(a=(16, 16, 3), b=(16, 16, 3), images=(16, 16, 3), c=(2, 2))
    assert choose("f.npz", arrays, set(), "keys") == Reading(
        "keys", ("a", "b", "images"), (16, 16, 3), -1
    )
    with pytest.raises(DataError) as e:
        choose("f.npz", _arrays(x=(10, 256), images=(10, 16, 16)), set(), "rows")
    assert str(e.value) == (
        "f.npz: --layout rows does not fit array 'images' of shape (10, 16, 16)"
    )
    with pytest.raises(DataError, match="--layout keys does not fit array 'x'"):
        choose("f.npz", _arrays(x=(10, 256)), set(), "keys")


def _luma(rgb):
    return np.rint(rgb[..., :3].astype(np.float64) @ LUMA).astype(rgb.dtype)


RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (4, 16, 20, 3), dtype=np.uint8)
RGBA = RNG.integers(0, 60000, (4, 16, 20, 4), dtype=np.uint16)


@pytest.mark.parametrize(
    "reading, arrays, expected, note",
    [
        (Reading("nhwc", ("x",), RGB.shape, -1), {"x": RGB}, _luma(RGB), "RGB"),
        (Reading("nchw", ("x",), (4, 3, 16, 20), 1), {"x": np.moveaxis(RGB, -1, 1)},
         _luma(RGB), "RGB"),
        (Reading("nhwc", ("x",), RGBA.shape, -1), {"x": RGBA}, _luma(RGBA), "RGBA"),
        (Reading("nchw", ("x",), (4, 4, 16, 20), 1), {"x": np.moveaxis(RGBA, -1, 1)},
         _luma(RGBA), "RGBA"),
        (Reading("nhwc", ("x",), (4, 16, 20, 1), -1), {"x": RGB[..., :1]}, RGB[..., 0], None),
        (Reading("nchw", ("x",), (4, 1, 16, 20), 1), {"x": RGB[:, None, ..., 0]},
         RGB[..., 0], None),
        (Reading("image", ("x",), (16, 20, 3), -1), {"x": RGB[0]}, _luma(RGB[:1]), "RGB"),
        (Reading("image", ("x",), (3, 16, 20), 0), {"x": np.moveaxis(RGB[0], -1, 0)},
         _luma(RGB[:1]), "RGB"),
        (Reading("image", ("x",), (16, 20)), {"x": RGB[0, ..., 0]}, RGB[:1, ..., 0], None),
        (Reading("keys", ("a", "b"), (3, 16, 20), 0),
         {"a": np.moveaxis(RGB[0], -1, 0), "b": np.moveaxis(RGB[1], -1, 0)}, _luma(RGB[:2]), "RGB"),
        (Reading("keys", ("a", "b"), (16, 20, 4), -1), {"a": RGBA[0], "b": RGBA[1]},
         _luma(RGBA[:2]), "RGBA"),
        (Reading("rows", ("x",), (4, 256)), {"x": RGB[:, :16, :16, 0].reshape(4, -1)},
         RGB[:, :16, :16, 0], None),
    ],
)  # fmt: skip
def test_each_reading_gives_grayscale_images_in_their_storage_type(reading, arrays, expected, note):
    notes = []
    got = to_images(reading, arrays, notes)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    assert notes == ([f"{note} converted to grayscale (BT.601 luminance)"] if note else [])
