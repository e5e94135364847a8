"""What the npz reader says, word for word, about each file it refuses, and the edges of what
it reads: the message a user gets is part of the reader, so each is asserted in full."""

import io
import struct
import zipfile

import numpy as np
import pytest

from cxrvae.data.npz import _joined, _size, read_npz
from cxrvae.errors import DataError

IMAGES = np.arange(20 * 32 * 32, dtype=np.uint32).reshape(20, 32, 32).astype(np.uint8)
DAMAGED = "the file is damaged or not what it claims"


def _refused(path, **kw) -> str:
    with pytest.raises(DataError) as e:
        read_npz(path, **kw)
    return str(e.value)


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_missing_file_and_folder(tmp_path):
    assert _refused(tmp_path / "no.npz") == f"{tmp_path / 'no.npz'}: no such file"
    assert _refused(tmp_path) == f"{tmp_path}: is a folder; give an .npz file"


def test_not_a_zip_and_a_zip_cut_short(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"\x93NUMPY not a zip at all")
    assert _refused(path) == f"{path}: not an npz file (an npz is a zip archive of .npy arrays)"
    whole = _npz_bytes(images=IMAGES)
    path.write_bytes(whole[: len(whole) // 2])  # the central directory at the end is gone
    assert _refused(path) == f"{path}: truncated or corrupt npz (the zip archive is cut short)"


def test_an_npz_without_arrays(tmp_path):
    path = tmp_path / "empty.npz"
    np.savez(path)
    assert _refused(path) == f"{path}: the npz holds no arrays"


@pytest.mark.parametrize("suffix, name", [(".npz", "array 'images'"), (".NPY", "the array")])
def test_pickled_objects_are_refused_from_the_header(tmp_path, suffix, name):
    path = tmp_path / f"objects{suffix}"
    objects = np.array([{"a": 1}, None], dtype=object)
    if suffix == ".npz":
        np.savez(path, images=objects)
    else:
        with open(path, "wb") as f:
            np.save(f, objects, allow_pickle=True)
    assert _refused(path) == (
        f"{path}: {name} holds pickled Python objects, which cxrvae never loads; save the "
        "arrays with plain numeric or string dtypes"
    )


def test_an_npy_that_is_not_one_names_numpy_s_reason(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"PK\x03\x04" + bytes(200))
    message = _refused(path)
    assert message.startswith(f"{path}: cannot read: the magic string is not correct")


def test_an_npy_is_one_array_named_images(tmp_path):
    np.save(tmp_path / "x.npy", IMAGES)
    reading = read_npz(tmp_path / "x.npy").reading
    assert reading == "array 'images' of shape (20, 32, 32) as 20 images of 32x32 px"


def test_npy_format_version_2_is_read(tmp_path):
    with open(tmp_path / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, IMAGES, version=(2, 0))  # a 4-byte header length
    np.testing.assert_array_equal(read_npz(tmp_path / "v2.npy").images, IMAGES)


def test_an_npy_cut_by_a_few_bytes_is_refused_before_mapping(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, IMAGES)
    path.write_bytes(path.read_bytes()[:-10])
    assert _refused(path) == (
        f"{path}: the array declares shape (20, 32, 32) of uint8 (20.5 kB) but the file holds "
        f"20.5 kB for it; {DAMAGED}"
    )


def test_every_array_of_an_npz_is_checked_after_other_members(tmp_path):
    path = tmp_path / "x.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1000, 1000)}
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "made by hand")
        zf.writestr("images.npy", header.getvalue() + bytes(80))
    assert _refused(path) == (
        f"{path}: array 'images' declares shape (1000, 1000) of float64 (8.0 MB) but the file "
        f"holds 80 bytes for it; {DAMAGED}"
    )


def test_members_that_are_not_arrays_are_never_read(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", _npy(IMAGES))
        zf.writestr("readme.txt", "made by hand")
    raw = read_npz(path)
    np.testing.assert_array_equal(raw.images, IMAGES)


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _with_stated_size(data: bytes, stated: int) -> bytes:
    """An npz (one deflated member) whose headers state ``stated`` unpacked bytes."""
    out = bytearray(data)
    local = out.index(b"PK\x03\x04")
    out[local + 22 : local + 26] = struct.pack("<I", stated)
    central = out.index(b"PK\x01\x02")
    out[central + 24 : central + 28] = struct.pack("<I", stated)
    return bytes(out)


def test_a_member_claiming_more_than_deflate_can_unpack(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images.npy", _npy(np.zeros((20, 32, 32), np.uint8)))
    with zipfile.ZipFile(buf) as zf:
        packed = zf.getinfo("images.npy").compress_size
    path = tmp_path / "bomb.npz"
    path.write_bytes(_with_stated_size(buf.getvalue(), 1100 * packed + 1))
    assert _refused(path) == (
        f"{path}: array 'images' claims to unpack {_size(packed)} into "
        f"{_size(1100 * packed + 1)}, more than zip compression can give; {DAMAGED}"
    )
    # at the limit the ratio is possible: the member is read (zipfile stops at the stream's end)
    path.write_bytes(_with_stated_size(buf.getvalue(), 1100 * packed))
    assert read_npz(path).images.shape == (20, 32, 32)


def test_damaged_bytes_name_the_error_numpy_or_zipfile_raised(tmp_path):
    path = tmp_path / "x.npz"
    data = bytearray(_npz_bytes(images=IMAGES))
    data[data.index(b"\x93NUMPY") + 300] ^= 0xFF  # a pixel flipped: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert _refused(path) == (
        f"{path}: truncated or corrupt npz (BadZipFile: Bad CRC-32 for file 'images.npy')"
    )


def test_arrays_too_large_for_memory_say_what_to_do(tmp_path, monkeypatch):
    path = tmp_path / "x.npz"
    np.savez(path, images=IMAGES)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", no_memory)
    assert _refused(path) == (
        f"{path}: its arrays do not fit in memory; save the images as an .npy file, which "
        "cxrvae maps from disk instead of loading"
    )


def test_sizes_in_words():
    assert [_size(n) for n in (999, 1000, 20_480, 1e6, 8e6, 1.5e9, 2.5e12, 1e15)] == [
        "999 bytes", "1.0 kB", "20.5 kB", "1.0 MB", "8.0 MB", "1.5 GB", "2.5 TB", "1,000.0 TB"
    ]  # fmt: skip


# ------------------------------------------------------------------- images and their arrays


def test_no_image_array_names_every_array(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, values=np.arange(10, dtype=np.int64), names=np.array(["a", "b"]))
    assert _refused(path) == (
        f"{path}: no numeric array with at least 2 dimensions (arrays: values int64 (10,), "
        "names <U1 (2,))"
    )


def test_an_empty_image_array(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((0, 32, 32), np.uint8), labels=np.zeros(0))
    assert _refused(path) == f"{path}: the image array (0, 32, 32) is empty"


def test_bool_images_are_read_as_zeros_and_ones(tmp_path):
    path = tmp_path / "x.npz"
    mask = IMAGES > 100
    np.savez(path, images=mask)
    raw = read_npz(path)
    assert raw.images.dtype == np.uint8 and raw.source_dtype == "bool"
    np.testing.assert_array_equal(raw.images, mask.astype(np.uint8))


def test_labels_of_another_length_are_refused(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=IMAGES, labels=np.zeros(19))
    assert _refused(path) == (
        f"{path}: array 'labels' has 19 entries for 20 images; labels and ids need one entry "
        "per image"
    )


def test_a_source_split_decides_the_count_and_one_of_another_length_is_dropped(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x=IMAGES[:3], source_split=np.array(["train", "train", "test"]))
    raw = read_npz(path)  # three images, not one colour image: the split counts three
    assert raw.images.shape == (3, 32, 32) and list(raw.source_split) == ["train"] * 2 + ["test"]
    np.savez(path, images=IMAGES, split=np.array(["train"] * 19))
    assert read_npz(path).source_split is None


def test_per_image_arrays_beside_the_images(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=IMAGES[:2], labels=np.array([[0], [1]]), ids=np.array([b"p1", b"p2"]),
             phase=np.array([1j, 2j]), label_names=np.array(["a", "b"]))  # fmt: skip
    raw = read_npz(path)  # the (2, 1) labels count two images
    assert raw.images.shape == (2, 32, 32) and set(raw.per_image) == {"labels", "ids"}
    np.testing.assert_array_equal(raw.per_image["labels"], [0, 1])
    np.savez(path, images=IMAGES[:1], threshold=np.array([[0.5]]))
    assert read_npz(path).per_image == {}  # a (1, 1) array is a value, not one per image


def test_label_names_of_the_file_win_and_must_be_one_dimensional(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=IMAGES, labels=np.arange(20) % 2, label_names=np.array(["a", "b"]))
    assert list(read_npz(path, label_names=["x", "y"]).label_names) == ["a", "b"]
    np.savez(path, images=IMAGES, labels=np.arange(20) % 2)
    assert list(read_npz(path, label_names=["x", "y"]).label_names) == ["x", "y"]
    np.savez(path, images=IMAGES, label_names=np.array([["a", "b"]]))
    assert read_npz(path).label_names is None


def test_image_arrays_left_out_are_listed(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=IMAGES, mean=IMAGES[0], std=IMAGES[1])
    assert read_npz(path).notes == ["image-like arrays left out: mean (32, 32), std (32, 32)"]


# ----------------------------------------------------------------------------------- MedMNIST


def _medmnist(tmp_path, **arrays):
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    return path


def test_medmnist_reading_and_one_dimensional_labels(tmp_path):
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:],
                     train_labels=np.arange(12) % 2, test_labels=np.arange(8) % 2)  # fmt: skip
    raw = read_npz(path)
    assert raw.reading == "array 'images' of shape (20, 32, 32) as 20 images of 32x32 px"
    np.testing.assert_array_equal(raw.per_image["labels"], np.r_[np.arange(12), np.arange(8)] % 2)
    assert _refused(path, layout="nhw") == (
        f"{path}: --layout does not apply to MedMNIST's train/val/test arrays"
    )


def test_medmnist_parts_of_another_dtype_or_order_are_pooled_exactly(tmp_path):
    wide = IMAGES[12:].astype(np.uint16) * 300
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=wide)
    raw = read_npz(path)
    assert raw.images.dtype == np.uint16
    np.testing.assert_array_equal(raw.images, np.concatenate([IMAGES[:12], wide]))
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=np.asfortranarray(IMAGES[12:]))
    np.testing.assert_array_equal(read_npz(path).images, IMAGES)


def test_medmnist_with_one_split_only(tmp_path):
    raw = read_npz(_medmnist(tmp_path, test_images=IMAGES, test_labels=np.arange(20) % 2))
    np.testing.assert_array_equal(raw.images, IMAGES)
    assert set(raw.source_split) == {"test"} and raw.notes == ["pooled MedMNIST splits test (20)"]


def test_medmnist_flattened_rows_are_pooled(tmp_path):
    rows = IMAGES.reshape(20, -1)
    raw = read_npz(_medmnist(tmp_path, train_images=rows[:12], test_images=rows[12:]))
    np.testing.assert_array_equal(raw.images, IMAGES)


def test_medmnist_refusals(tmp_path):
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:, :16])
    assert _refused(path) == f"{path}: the train, test images have different shapes"
    path = _medmnist(tmp_path, train_images=np.arange(12), test_images=IMAGES[12:])
    assert _refused(path) == (
        f"{path}: train_images (int64, shape (12,)) is not a numeric array of images"
    )
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:],
                     train_labels=np.zeros((12, 1)), test_labels=np.zeros((8, 2)))  # fmt: skip
    assert _refused(path) == f"{path}: the *_labels arrays have different shapes"
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:],
                     train_labels=np.zeros(12), test_labels=np.zeros(7))  # fmt: skip
    assert _refused(path) == f"{path}: 19 labels for 20 images in the train/val/test arrays"


def test_medmnist_labels_that_are_not_classes_are_said_so(tmp_path):
    labels = np.zeros((20, 2, 2))
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:],
                     train_labels=labels[:12], test_labels=labels[12:])  # fmt: skip
    raw = read_npz(path)
    assert "labels" not in raw.per_image
    assert "labels of shape (2, 2) per image are not used as classes" in raw.notes


def test_findings_each_name_their_own_finding(tmp_path):
    findings = np.zeros((20, 3), np.uint8)
    findings[3, 1] = findings[4, 2] = findings[5, 0] = 1
    path = _medmnist(tmp_path, train_images=IMAGES[:12], test_images=IMAGES[12:],
                     train_labels=findings[:12], test_labels=findings[12:])  # fmt: skip
    raw = read_npz(path, label_names=["effusion", "mass"])  # two names for three findings
    assert list(raw.per_image["labels"][3:6]) == ["finding 1", "finding 2", "finding 0"]
    assert raw.label_names is None  # the classes are the findings' names now


def test_joined_finds_the_array_that_slices_cover():
    base = np.arange(10)
    assert _joined([base[:4], base[4:]]) is base
    assert _joined([base[:4], base[5:]]) is None  # a gap: not the whole array
    assert _joined([base[:4], np.arange(6)]) is None  # another array
    assert _joined([np.arange(4), np.arange(6)]) is None
