"""The image and vector SQL functions on the JVM, checked against Pillow and OpenCV decoding the same files."""
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from pyspark.ml.linalg import Vectors
from pyspark.sql import Row
from pyspark.sql.types import StructField, StructType

from petastorm.spark import TensorUDT, as_tensor
from petastorm.spark import functions
from petastorm.spark.functions import (SqlFunctionNotRegisteredError, decode_image, encode_image,
                                       image_failure_count, load_image, tensor_shape, vector_to_tensor)

H, W = 23, 37


def _rng(seed):
    return np.random.default_rng(seed)


def _pillow_images():
    """(name, Pillow image, save options, the array Pillow decodes it to, with a channel axis).

    None stands for Pillow's RGBA conversion of the saved file (transparency stored with it).
    """
    rng = _rng(0)
    grey = rng.integers(0, 256, (H, W), dtype=np.uint8)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    la = Image.fromarray(rng.integers(0, 256, (H, W, 2), dtype=np.uint8), mode="LA")
    palette = Image.fromarray(rgb).quantize(colors=50)
    small_palette = Image.fromarray(rgb).quantize(colors=12)
    grey16 = Image.fromarray(rng.integers(0, 65536, (H, W), dtype=np.uint16))
    bits = Image.fromarray(rng.integers(0, 2, (H, W), dtype=np.uint8) * 255).convert("1")
    return [
        ("grey.png", Image.fromarray(grey), {}, grey[..., None]),
        ("rgb.png", Image.fromarray(rgb), {}, rgb),
        ("rgba.png", Image.fromarray(rgba), {}, rgba),
        ("la.png", la, {}, np.asarray(la.convert("RGBA"))),
        ("palette.png", palette, {}, np.asarray(palette.convert("RGB"))),
        ("palette4.png", small_palette, {"bits": 4}, np.asarray(small_palette.convert("RGB"))),
        ("transparent.png", palette, {"transparency": 3}, None),
        ("colour_key.png", Image.fromarray(rgb), {"transparency": tuple(int(v) for v in rgb[0, 0])}, None),
        ("grey16.png", grey16, {}, np.asarray(grey16)[..., None]),
        ("bits.png", bits, {}, np.asarray(bits.convert("L"))[..., None]),
        ("rgb.bmp", Image.fromarray(rgb), {}, rgb),
        ("palette.gif", palette, {}, np.asarray(palette.convert("RGB"))),
    ]


def _write_grey2_png(path, values):
    """A 2-bit grey PNG (which Pillow does not write) of `values` in 0..3, whose width is a multiple of 4."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    h, w = values.shape
    packed = (values[:, 0::4] << 6 | values[:, 1::4] << 4 | values[:, 2::4] << 2 | values[:, 3::4]).astype(np.uint8)
    rows = b"".join(b"\x00" + row.tobytes() for row in packed)
    header = struct.pack(">IIBBBBB", w, h, 2, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for name, image, options, _ in _pillow_images():
        image.save(d / name, **options)
    return d


def _load(spark, paths, *args, **kwargs):
    df = spark.createDataFrame([(str(p),) for p in paths], ["path"])
    return [row.image for row in df.select(load_image("path", *args, **kwargs).alias("image")).collect()]


def test_load_image_equals_pillow_for_png_bmp_and_gif(spark, image_dir):
    cases = _pillow_images()
    images = _load(spark, [image_dir / name for name, _, _, _ in cases])
    for (name, _, _, expected), got in zip(cases, images):
        if expected is None:
            expected = np.asarray(Image.open(image_dir / name).convert("RGBA"))
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_two_bit_grey_png_scales_to_eight_bits(spark, tmp_path):
    values = _rng(3).integers(0, 4, (5, 12))
    _write_grey2_png(tmp_path / "grey2.png", values)
    got = _load(spark, [tmp_path / "grey2.png"])[0]
    np.testing.assert_array_equal(got[..., 0], values * 85)
    np.testing.assert_array_equal(got[..., 0], np.asarray(Image.open(tmp_path / "grey2.png")))


def test_sixteen_bit_rgb_png_equals_opencv(spark, tmp_path):
    bgr = _rng(1).integers(0, 65536, (H, W, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr)
    got = _load(spark, [tmp_path / "rgb16.png"])[0]
    expected = cv2.imread(str(tmp_path / "rgb16.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, expected)


def test_jpeg_is_within_a_few_levels_of_pillow(spark, tmp_path):
    y, x = np.mgrid[0:64, 0:96]
    smooth = np.stack([x * 2, y * 3, (x + y)], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "smooth.jpg", quality=90)
    got = _load(spark, [tmp_path / "smooth.jpg"])[0].astype(int)
    pillow = np.asarray(Image.open(tmp_path / "smooth.jpg")).astype(int)
    assert got.shape == pillow.shape == (64, 96, 3)
    assert np.abs(got - pillow).max() <= 3
    assert np.abs(got - smooth).mean() < 2


def test_channels_and_resize_match_pillow_luma_and_opencv_bilinear(spark, image_dir):
    grey = _load(spark, [image_dir / "rgb.png"], channels=1)[0]
    np.testing.assert_array_equal(grey[..., 0], np.asarray(Image.open(image_dir / "rgb.png").convert("L")))
    rgb = np.asarray(Image.open(image_dir / "rgb.png"))
    for height, width in [(46, 74), (11, 20), (30, 17)]:
        got = _load(spark, [image_dir / "rgb.png"], height, width)[0]
        expected = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
        assert got.shape == (height, width, 3)
        assert np.abs(got.astype(int) - expected).max() <= 1


def test_decode_image_reads_binary_file_content(spark, image_dir):
    df = spark.read.format("binaryFile").option("pathGlobFilter", "*.png").load(str(image_dir))
    shapes = {row.path.rsplit("/", 1)[-1]: row.shape
              for row in df.select("path", tensor_shape(decode_image("content", 8, 8, 3)).alias("shape")).collect()}
    assert shapes["rgba.png"] == shapes["grey16.png"] == [8, 8, 3]


def test_encode_image_png_is_exact_and_jpeg_close_for_pillow(spark):
    rgb = _rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    y, x = np.mgrid[0:H, 0:W]
    smooth = np.stack([x * 4, y * 5, x + y], axis=-1).astype(np.uint8)
    schema = StructType([StructField("a", TensorUDT()), StructField("b", TensorUDT())])
    df = spark.createDataFrame([Row(as_tensor(rgb), as_tensor(smooth))], schema)
    row = df.select(encode_image("a").alias("png"), encode_image("b", "jpeg", 95).alias("jpeg")).first()
    assert bytes(row.png[:4]) == b"\x89PNG"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(row.png))), rgb)
    decoded = np.asarray(Image.open(io.BytesIO(row.jpeg))).astype(int)
    assert np.abs(decoded - smooth).max() <= 8


def test_failures_give_null_and_are_counted_or_fail_naming_the_path(spark, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths = [tmp_path / "broken.png", tmp_path / "missing.png"]
    before = image_failure_count(spark)
    assert _load(spark, paths) == [None, None]
    assert image_failure_count(spark) - before == 2
    spark.conf.set("spark.petastorm.image.onError", "fail")
    try:
        with pytest.raises(Exception, match="load_image: cannot decode '.*broken.png': Expected PNG, JPEG, BMP or GIF"):
            _load(spark, paths[:1])
        with pytest.raises(Exception, match="IllegalArgumentException: load_image: cannot read '.*missing.png': "
                                            "file not found"):
            _load(spark, paths[1:])
    finally:
        spark.conf.unset("spark.petastorm.image.onError")


def test_vector_to_tensor_dense_and_sparse(spark):
    df = spark.createDataFrame([(1, Vectors.dense([1.0, 2.0, 3.0, 4.0])),
                                (2, Vectors.sparse(4, [0, 2], [7.0, 8.0])), (3, None)], ["id", "v"])
    rows = df.orderBy("id").select(vector_to_tensor("v").alias("flat"), vector_to_tensor("v", [2, 2]).alias("sq"))
    got = rows.collect()
    np.testing.assert_array_equal(got[0].flat, np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(got[1].sq, np.array([[7.0, 0.0], [8.0, 0.0]]))
    assert got[1].sq.dtype == np.float64 and got[2].flat is None


def test_wrappers_check_their_arguments():
    with pytest.raises(ValueError, match="both height and width"):
        load_image("path", height=10)


def test_a_function_the_session_does_not_know_says_how_to_register_them(spark):
    # The shared session has the extension, so an unknown name stands for a session without it: the catalog's real
    # UNRESOLVED_ROUTINE, met when the wrapper builds its column, becomes an error naming the two ways to fix it.
    with pytest.raises(SqlFunctionNotRegisteredError) as raised:
        functions._function("no_such_petastorm_fn", functions.F.lit(1))
    message = str(raised.value)
    assert message.startswith("no_such_petastorm_fn: petastorm's SQL functions are not registered")
    assert "--conf spark.sql.extensions=org.petastorm.spark.PetastormExtensions" in message
    assert "petastorm.spark.configure_spark(SparkSession.builder)" in message
    ones = functions.array_to_tensor(functions.F.array(functions.F.lit(1)), [1])  # a known function: no error
    assert spark.range(1).select(tensor_shape(ones)).first()[0] == [1]
