"""Codecs: byte formats, image backends (OpenCV and Pillow), error messages and vectorised column decoding."""
from __future__ import annotations

import decimal
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pyspark.sql import types as T

from petastorm import codecs
from petastorm.codecs import (CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec,
                              decode_column)
from petastorm.errors import DecodeFieldError
from petastorm.etl.legacy_pickle import safe_loads
from petastorm.unischema import UnischemaField

DATA = Path(__file__).parent / "data" / "petastorm-0.13.1"
BACKENDS = ["opencv", "pillow"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Runs a test once with OpenCV and once with Pillow doing the image work."""
    if request.param == "opencv":
        pytest.importorskip("cv2")
    monkeypatch.setattr(codecs, "IMAGE_BACKEND", request.param)
    return request.param


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# ------------------------------------------------------------------ NdarrayCodec / CompressedNdarrayCodec

@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.int64, np.float32, np.float64, np.bool_])
def test_ndarray_codec_is_exactly_np_save(dtype):
    field = UnischemaField("m", dtype, (None, 4), NdarrayCodec(), False)
    value = (np.arange(12) % 3).astype(dtype).reshape(3, 4)
    cell = NdarrayCodec().encode(field, value)
    assert bytes(cell) == npy_bytes(value)
    assert bytes(cell[:8]) == b"\x93NUMPY\x01\x00"
    decoded = NdarrayCodec().decode(field, cell)
    assert decoded.dtype == value.dtype and np.array_equal(decoded, value)
    decoded[0, 0] = decoded[0, 1]  # decoded arrays are writable


def test_ndarray_codec_strings_and_fortran_order():
    field = UnischemaField("s", np.str_, (None,), NdarrayCodec(), False)
    strings = np.array(["a", "bcd", ""])
    assert np.array_equal(NdarrayCodec().decode(field, npy_bytes(strings)), strings)
    ffield = UnischemaField("f", np.float64, (3, 2), NdarrayCodec(), False)
    fortran = np.asfortranarray(np.arange(6.0).reshape(3, 2))
    assert np.array_equal(NdarrayCodec().decode(ffield, npy_bytes(fortran)), fortran)


def test_ndarray_codec_encode_validates():
    field = UnischemaField("m", np.float32, (2, None), NdarrayCodec(), False)
    with pytest.raises(ValueError, match=r"Field 'm': expected shape \(2, None\), got \(3, 1\)"):
        NdarrayCodec().encode(field, np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match=r"Field 'm': expected dtype float32, got float64"):
        NdarrayCodec().encode(field, np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"Field 'm': expected a numpy.ndarray .* got list"):
        NdarrayCodec().encode(field, [[1.0], [2.0]])


def test_ndarray_decode_errors_name_the_field():
    field = UnischemaField("depth", np.float32, (4,), NdarrayCodec(), False)
    cell = npy_bytes(np.ones(4, np.float32))
    with pytest.raises(DecodeFieldError, match=r"Field 'depth': truncated NPY cell: shape \(4,\) .* needs 16 data "
                                               r"bytes, the cell has 10"):
        NdarrayCodec().decode(field, cell[:-6])
    with pytest.raises(DecodeFieldError, match="Field 'depth': cell is not a valid NPY array"):
        NdarrayCodec().decode(field, b"not an npy cell at all")
    with pytest.raises(DecodeFieldError, match="Field 'depth': NPY cell holds Python objects"):
        buf = io.BytesIO()
        np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        NdarrayCodec().decode(field, buf.getvalue())


def test_compressed_ndarray_codec_format():
    field = UnischemaField("p", np.float64, (5, 7), CompressedNdarrayCodec(), False)
    value = np.random.default_rng(0).random((5, 7))
    cell = CompressedNdarrayCodec().encode(field, value)
    with zipfile.ZipFile(io.BytesIO(bytes(cell))) as archive:
        assert archive.namelist() == ["arr.npy"]
        assert archive.getinfo("arr.npy").compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("arr.npy") == npy_bytes(value)
    assert np.array_equal(CompressedNdarrayCodec().decode(field, cell), value)
    with pytest.raises(DecodeFieldError, match="Field 'p': cell is not a compressed ndarray"):
        CompressedNdarrayCodec().decode(field, b"PK\x03\x04 broken")


# ------------------------------------------------------------------ CompressedImageCodec

def rgb_image(h=20, w=30, dtype=np.uint8):
    rng = np.random.default_rng(1)
    top = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, top, size=(h, w, 3), endpoint=True).astype(dtype)


@pytest.mark.parametrize("shape,dtype", [((20, 30, 3), np.uint8), ((20, 30), np.uint8), ((20, 30), np.uint16)])
def test_png_round_trip_is_lossless(backend, shape, dtype):
    field = UnischemaField("img", dtype, shape, CompressedImageCodec("png"), False)
    value = rgb_image(dtype=dtype)[..., 0] if len(shape) == 2 else rgb_image(dtype=dtype)
    cell = CompressedImageCodec("png").encode(field, value)
    assert bytes(cell[:8]) == b"\x89PNG\r\n\x1a\n"
    decoded = CompressedImageCodec("png").decode(field, cell)
    assert decoded.dtype == dtype and np.array_equal(decoded, value)


def test_png_rgb_meaning_is_standard(backend):
    field = UnischemaField("img", np.uint8, (2, 2, 3), CompressedImageCodec("png"), False)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    cell = CompressedImageCodec("png").encode(field, red)
    with Image.open(io.BytesIO(bytes(cell))) as image:
        assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 0, 0)


def test_png_pixels_identical_across_backends(monkeypatch):
    pytest.importorskip("cv2")
    field = UnischemaField("img", np.uint8, (20, 30, 3), CompressedImageCodec("png"), False)
    value = rgb_image()
    cells = {}
    for name in BACKENDS:
        monkeypatch.setattr(codecs, "IMAGE_BACKEND", name)
        cells[name] = CompressedImageCodec("png").encode(field, value)
    for decoder in BACKENDS:
        monkeypatch.setattr(codecs, "IMAGE_BACKEND", decoder)
        for cell in cells.values():
            assert np.array_equal(CompressedImageCodec("png").decode(field, cell), value)


def test_uint16_colour_png_needs_opencv(monkeypatch):
    pytest.importorskip("cv2")
    field = UnischemaField("img", np.uint16, (20, 30, 3), CompressedImageCodec("png"), False)
    value = rgb_image(dtype=np.uint16)
    monkeypatch.setattr(codecs, "IMAGE_BACKEND", "opencv")
    cell = CompressedImageCodec("png").encode(field, value)
    assert np.array_equal(CompressedImageCodec("png").decode(field, cell), value)
    monkeypatch.setattr(codecs, "IMAGE_BACKEND", "pillow")
    with pytest.raises(DecodeFieldError, match="Field 'img': 16-bit colour PNG needs OpenCV"):
        CompressedImageCodec("png").decode(field, cell)
    with pytest.raises(ValueError, match="Field 'img': 16-bit colour PNG needs OpenCV"):
        CompressedImageCodec("png").encode(field, value)


def test_jpeg_round_trip_is_close_and_quality_matters(backend):
    field = UnischemaField("img", np.uint8, (32, 48, 3), CompressedImageCodec("jpeg"), False)
    yy, xx = np.mgrid[0:32, 0:48]
    value = np.stack([xx * 5, yy * 7, (xx + yy) * 3], axis=-1).astype(np.uint8)
    high = CompressedImageCodec("jpeg", quality=95).encode(field, value)
    low = CompressedImageCodec("jpeg", quality=20).encode(field, value)
    assert bytes(high[:2]) == b"\xff\xd8" and len(low) < len(high)
    decoded = CompressedImageCodec("jpeg").decode(field, high)
    assert decoded.shape == value.shape and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - value).mean() < 3


def test_image_codec_validation_and_errors(backend):
    png = CompressedImageCodec("png")
    field = UnischemaField("cam", np.uint8, (4, 4, 3), png, False)
    with pytest.raises(ValueError, match=r"Field 'cam': expected shape \(4, 4, 3\), got \(4, 5, 3\)"):
        png.encode(field, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="Field 'cam': expected dtype uint8, got float32"):
        png.encode(field, np.zeros((4, 4, 3), np.float32))
    four = UnischemaField("cam", np.uint8, (4, 4, 4), png, False)
    with pytest.raises(ValueError, match=r"Field 'cam': an image must have shape \(H, W\) or \(H, W, 3\)"):
        png.encode(four, np.zeros((4, 4, 4), np.uint8))
    jpeg16 = UnischemaField("cam", np.uint16, (4, 4), CompressedImageCodec("jpeg"), False)
    with pytest.raises(ValueError, match="Field 'cam': dtype uint16 is not supported by this codec"):
        CompressedImageCodec("jpeg").encode(jpeg16, np.zeros((4, 4), np.uint16))
    with pytest.raises(DecodeFieldError, match="Field 'cam': cell is not a valid PNG image"):
        png.decode(field, b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match="Unsupported image codec 'gif'"):
        CompressedImageCodec("gif")


def test_image_codec_state_matches_the_original_format():
    assert CompressedImageCodec().__dict__ == {"_image_codec": ".png", "_quality": 80}
    assert CompressedImageCodec("jpg", 90).__dict__ == {"_image_codec": ".jpeg", "_quality": 90}
    assert CompressedImageCodec("jpeg").image_codec == "jpeg" and CompressedImageCodec().quality == 80
    assert NdarrayCodec().__dict__ == {} and CompressedNdarrayCodec().__dict__ == {}
    assert ScalarCodec(T.LongType()).__dict__ == {"_spark_type": T.LongType()}
    assert NdarrayCodec().spark_dtype() == T.BinaryType()


# ------------------------------------------------------------------ ScalarCodec

def test_scalar_codec_encode_and_decode():
    int_field = UnischemaField("i", np.int32, (), ScalarCodec(T.IntegerType()), False)
    assert ScalarCodec(T.IntegerType()).encode(int_field, np.int32(7)) == 7
    assert type(ScalarCodec(T.IntegerType()).encode(int_field, np.array(7, np.int32))) is int
    assert ScalarCodec(T.IntegerType()).decode(int_field, 7).dtype == np.int32
    float_field = UnischemaField("f", np.float64, (), ScalarCodec(T.DoubleType()), False)
    assert ScalarCodec(T.DoubleType()).encode(float_field, 3) == 3.0
    str_field = UnischemaField("s", np.str_, (), ScalarCodec(T.StringType()), False)
    assert ScalarCodec(T.StringType()).encode(str_field, "x") == "x"
    assert type(ScalarCodec(T.StringType()).decode(str_field, "x")) is np.str_
    dec_field = UnischemaField("d", decimal.Decimal, (), ScalarCodec(T.DecimalType(10, 2)), False)
    assert ScalarCodec(T.DecimalType(10, 2)).decode(dec_field, "1.25") == decimal.Decimal("1.25")


def test_scalar_codec_errors_name_the_field():
    codec = ScalarCodec(T.IntegerType())
    field = UnischemaField("count", np.int32, (), codec, False)
    with pytest.raises(ValueError, match=r"Field 'count': expected a scalar of int32, got an array of shape \(2,\)"):
        codec.encode(field, np.array([1, 2]))
    with pytest.raises(ValueError, match="Field 'count': expected a value of type int32, got str"):
        codec.encode(field, "12")
    with pytest.raises(ValueError, match=r"Field 'count': ScalarCodec needs shape \(\)"):
        codec.encode(field._replace(shape=(1,)), 1)


def test_scalar_codec_completes_spark_types_pickled_by_older_pyspark():
    # pyspark 3 pickled StringType() without state; pyspark 4 needs its `collation` attribute.
    legacy = (b"\x80\x04\x8c\x10petastorm.codecs\x8c\x0bScalarCodec\x93)\x81}\x8c\x0b_spark_type"
              b"\x8c\x11pyspark.sql.types\x8c\nStringType\x93)\x81sb.")
    codec = safe_loads(legacy)
    assert codec.spark_dtype().simpleString() == "string" and codec == ScalarCodec(T.StringType())


# ------------------------------------------------------------------ decode_column

def npy_column(arrays, type_=pa.binary()):
    return pa.array([None if a is None else npy_bytes(a) for a in arrays], type=type_)


@pytest.mark.parametrize("type_", [pa.binary(), pa.large_binary()])
def test_decode_column_fixed_shape_is_one_array(type_):
    field = UnischemaField("m", np.float32, (4, 3), NdarrayCodec(), False)
    arrays = [np.random.default_rng(i).random((4, 3)).astype(np.float32) for i in range(50)]
    column = npy_column(arrays, type_)
    out = decode_column(field, column)
    assert out.shape == (50, 4, 3) and out.dtype == np.float32 and out.flags.c_contiguous and out.flags.writeable
    assert np.array_equal(out, np.stack(arrays))
    assert np.array_equal(decode_column(field, column.slice(7, 11)), np.stack(arrays[7:18]))
    chunked = pa.chunked_array([column.slice(0, 20), column.slice(20)])
    assert np.array_equal(decode_column(field, chunked), np.stack(arrays))
    assert np.array_equal(decode_column(field, [npy_bytes(a) for a in arrays]), np.stack(arrays))


def test_decode_column_does_not_loop_over_rows(monkeypatch):
    field = UnischemaField("m", np.uint16, (8, 8), NdarrayCodec(), False)
    column = npy_column([np.full((8, 8), i, np.uint16) for i in range(1000)])

    def per_cell(*args):
        raise AssertionError("per-cell decode used")

    monkeypatch.setattr(codecs, "_load_npy", per_cell)
    out = decode_column(field, column)
    assert out.shape == (1000, 8, 8) and (out[:, 0, 0] == np.arange(1000)).all()


def test_decode_column_falls_back_for_differing_headers():
    field = UnischemaField("m", np.float32, (3,), NdarrayCodec(), False)
    arrays = [np.arange(3, dtype=np.float32), np.arange(3, dtype=">f4"), np.ones(3, np.float32)]
    out = decode_column(field, npy_column(arrays))
    assert out.shape == (3, 3) and np.array_equal(out, np.stack([a.astype(np.float32) for a in arrays]))


def test_decode_column_variable_shapes_and_nulls():
    field = UnischemaField("r", np.float32, (None, 3), NdarrayCodec(), True)
    arrays = [np.ones((i, 3), np.float32) * i for i in range(4)] + [None]
    out = decode_column(field, npy_column(arrays))
    assert out.dtype == object and out.shape == (5,) and out[4] is None
    for got, want in zip(out[:4], arrays[:4]):
        assert np.array_equal(got, want)
    same = decode_column(field, npy_column([np.ones((2, 3), np.float32)] * 3))
    assert same.dtype == object and all(v.shape == (2, 3) for v in same)
    fixed = UnischemaField("f", np.float32, (3,), NdarrayCodec(), True)
    with_null = decode_column(fixed, npy_column([np.ones(3, np.float32), None]))
    assert with_null.dtype == object and with_null[1] is None


def test_decode_column_errors_name_field_and_row():
    field = UnischemaField("m", np.float32, (None,), NdarrayCodec(), False)
    cells = [npy_bytes(np.ones(4, np.float32)), npy_bytes(np.ones(5, np.float32))[:-3]]
    with pytest.raises(DecodeFieldError, match=r"Field 'm': truncated NPY cell.*\(row 1 of the column\)"):
        decode_column(field, pa.array(cells, pa.binary()))
    fixed = UnischemaField("m", np.float32, (4,), NdarrayCodec(), False)
    with pytest.raises(DecodeFieldError, match=r"Field 'm': stored arrays have shape \(5,\), the field's shape is "
                                               r"\(4,\)"):
        decode_column(fixed, npy_column([np.ones(5, np.float32)] * 2))


def test_decode_column_other_codecs_and_scalars(backend):
    img = UnischemaField("img", np.uint8, (6, 5), CompressedImageCodec("png"), False)
    images = [np.full((6, 5), i, np.uint8) for i in range(3)]
    out = decode_column(img, [img.codec.encode(img, v) for v in images])
    assert out.shape == (3, 6, 5) and np.array_equal(out, np.stack(images))
    ints = UnischemaField("i", np.int32, (), ScalarCodec(T.ShortType()), False)
    out = decode_column(ints, pa.array([1, 2, 3], pa.int16()))
    assert out.dtype == np.int32 and out.tolist() == [1, 2, 3]
    nullable = decode_column(ints._replace(nullable=True), pa.array([1, None], pa.int16()))
    assert nullable.dtype == object and nullable[1] is None and nullable[0] == 1
    strings = decode_column(UnischemaField("s", np.str_, (), None, False), pa.array(["a", "b"]))
    assert strings.dtype == object and strings.tolist() == ["a", "b"]
    lists = decode_column(UnischemaField("l", np.int32, (None,), None, True), pa.array([[1, 2], None, []]))
    assert np.array_equal(lists[0], [1, 2]) and lists[0].dtype == np.int32 and lists[1] is None
    empty = decode_column(UnischemaField("m", np.float32, (2,), NdarrayCodec(), False), pa.array([], pa.binary()))
    assert empty.shape == (0, 2) and empty.dtype == np.float32


def sha256(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_decode_column_matches_original_on_fixture_cells(backend):
    """The codecs fixture, decoded column-wise, equals what Petastorm 0.13.1 decoded (PNG and NPZ exactly)."""
    schema = safe_loads(pq.read_schema(DATA / "codecs" / "_common_metadata").metadata[b"dataset-toolkit.unischema.v1"])
    table = pq.ParquetDataset(DATA / "codecs").read().sort_by("id")
    oracle = sorted(json.loads((DATA / "oracle.json").read_text())["codecs"], key=lambda r: r["id"])
    for name in ("gray_png", "packed"):
        column = decode_column(schema.fields[name], table.column(name))
        assert [sha256(v) for v in column] == [row[name]["sha256"] for row in oracle]
    ragged = decode_column(schema.fields["ragged"], table.column("ragged"))
    assert [v is None for v in ragged] == [row["ragged"] is None for row in oracle]
    assert [sha256(v) for v in ragged if v is not None] == [r["ragged"]["sha256"] for r in oracle if r["ragged"]]
    jpeg = decode_column(schema.fields["jpeg"], table.column("jpeg"))
    assert jpeg.shape == (60, 32, 48, 3)
    for cell, decoded in zip(table.column("jpeg").to_pylist(), jpeg):
        with Image.open(io.BytesIO(cell)) as image:
            assert np.abs(np.asarray(image).astype(int) - decoded).max() <= 8


def test_npy_headers_parse_in_many_threads_at_once():
    """The headers give numpy's answers, also read from several threads at once (numpy's own reader, which the
    engine no longer uses, fails at random under reader threads on Python 3.11: cpython#106905)."""
    import threading

    from petastorm._npy import read_npy_header

    cells = []
    for array in (np.zeros((3, 32, 32), np.float32), np.zeros((), np.int64), np.zeros((2, 3), order="F"),
                  np.zeros(4, "<U7"), np.zeros(2, [("a", "<i4"), ("b", "<f8")])):
        buffer = io.BytesIO()
        np.save(buffer, array)
        cells.append((buffer.getvalue(), array))
    for cell, array in cells:
        dtype, shape, fortran, offset = read_npy_header(cell)
        assert (dtype, shape, fortran) == (array.dtype, array.shape, bool(np.isfortran(array)))
        assert len(cell) - offset == array.nbytes
    errors = []

    def parse() -> None:
        try:
            for _ in range(2000):
                for cell, _array in cells:
                    read_npy_header(cell)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=parse) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pytest.raises(ValueError, match="magic"):
        read_npy_header(b"not an npy cell")
