"""The `petastorm` Spark data source against the Python reader: each reads what the other wrote, value for value."""
import decimal
import io

import numpy as np
import pytest
from PIL import Image
from pyspark.ml.linalg import Vectors
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DecimalType, DoubleType, IntegerType, StringType, StructField,
                               StructType)

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import UNISCHEMA_KEY, get_schema_from_dataset_url, materialize_dataset
from petastorm.etl.legacy_pickle import safe_loads
from petastorm.spark import TensorUDT, as_tensor
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

N = 12


def _rows():
    rng = np.random.default_rng(7)
    for i in range(N):
        yield dict(
            id=i,
            fixed=rng.standard_normal((2, 3)).astype(np.float32),
            ragged=rng.integers(0, 255, size=(1 + i % 3, 3), dtype=np.uint8),
            image=rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8),
            vec=[float(i), float(i) / 2, 0.0],
            flat=[float(i + k) for k in range(4)],
            name=f"row-{i}",
            score=i / 7,
            ok=i % 2 == 0,
            price=decimal.Decimal(i) / 4,
        )


@pytest.fixture(scope="module")
def spark_written(spark, tmp_path_factory):
    """A dataset written by `df.write.format("petastorm")` from tensor, vector, array and scalar columns."""
    rows = list(_rows())
    schema = StructType([
        StructField("id", IntegerType(), False), StructField("fixed", TensorUDT(), False),
        StructField("ragged", TensorUDT(), False), StructField("image", TensorUDT(), False),
        StructField("name", StringType(), False), StructField("score", DoubleType(), False),
        StructField("ok", BooleanType(), False), StructField("price", DecimalType(10, 2), False),
    ])
    df = spark.createDataFrame(
        [(r["id"], as_tensor(r["fixed"]), as_tensor(r["ragged"]), as_tensor(r["image"]), r["name"], r["score"],
          r["ok"], r["price"]) for r in rows], schema).repartition(3)
    extra = spark.createDataFrame([(r["id"], Vectors.dense(r["vec"]), r["flat"]) for r in rows], ["id", "vec", "flat"])
    df = df.join(extra, "id")
    path = tmp_path_factory.mktemp("spark-written") / "data"
    (df.write.format("petastorm").option("codec.image", "png").option("codec.ragged", "compressed_ndarray")
       .option("shape.flat", "2,2").option("dtype.flat", "float32").save(str(path)))
    return f"file://{path}", rows


def test_python_reads_what_spark_wrote_value_exact(spark_written):
    url, rows = spark_written
    schema = get_schema_from_dataset_url(url)
    assert schema.fixed.shape == (2, 3) and schema.fixed.numpy_dtype == np.float32
    assert schema.ragged.shape == (None, 3) and isinstance(schema.ragged.codec, CompressedNdarrayCodec)
    assert isinstance(schema.image.codec, CompressedImageCodec) and schema.image.shape == (8, 8, 3)
    assert schema.vec.numpy_dtype == np.float64 and schema.flat.shape == (2, 2)
    with make_reader(url, shuffle_row_groups=False) as reader:
        got = {r.id: r for r in reader}
    assert sorted(got) == list(range(N))
    for r in rows:
        g = got[r["id"]]
        np.testing.assert_array_equal(g.fixed, r["fixed"])
        assert g.fixed.dtype == np.float32
        np.testing.assert_array_equal(g.ragged, r["ragged"])
        np.testing.assert_array_equal(g.image, r["image"])
        np.testing.assert_array_equal(g.vec, np.array(r["vec"]))
        np.testing.assert_array_equal(g.flat, np.array(r["flat"], np.float32).reshape(2, 2))
        assert (g.name, g.score, bool(g.ok), g.price) == (r["name"], r["score"], r["ok"], r["price"])


def test_spark_written_cells_are_np_save_bytes_and_the_pickle_matches_the_json(spark, spark_written):
    url, rows = spark_written
    path = url[len("file://"):]
    stored = spark.read.parquet(path).orderBy("id").first()
    buffer = io.BytesIO()
    np.save(buffer, rows[0]["fixed"])
    assert bytes(stored.fixed) == buffer.getvalue()
    assert Image.open(io.BytesIO(stored.image)).format == "PNG"
    import pyarrow.parquet as pq
    pickled = pq.read_schema(f"{path}/_common_metadata").metadata[UNISCHEMA_KEY]
    assert safe_loads(pickled) == get_schema_from_dataset_url(url)


def test_batch_reader_stacks_fixed_tensors_from_spark_written_data(spark_written):
    url, rows = spark_written
    with make_batch_reader(url, schema_fields=["id", "fixed", "image"], shuffle_row_groups=False) as reader:
        batches = list(reader)
    ids = np.concatenate([b.id for b in batches])
    fixed = np.concatenate([b.fixed for b in batches])
    assert fixed.shape == (N, 2, 3)
    for i, row_id in enumerate(ids):
        np.testing.assert_array_equal(fixed[i], rows[row_id]["fixed"])


def test_spark_reads_its_own_tensors_as_ndarrays(spark, spark_written):
    url, rows = spark_written
    df = spark.read.format("petastorm").load(url)
    assert isinstance(df.schema["fixed"].dataType, TensorUDT)
    assert df.schema["fixed"].metadata["petastorm"]["shape"] == [2, 3]
    got = {r.id: r for r in df.collect()}
    for r in rows:
        np.testing.assert_array_equal(got[r["id"]].ragged, r["ragged"])
        np.testing.assert_array_equal(got[r["id"]].vec, np.array(r["vec"]))


PythonSchema = Unischema("PythonSchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(IntegerType()), False),
    UnischemaField("matrix", np.float64, (4, 5), NdarrayCodec(), False),
    UnischemaField("packed", np.int16, (3, 3), CompressedNdarrayCodec(), False),
    UnischemaField("grey", np.uint8, (6, 7), CompressedImageCodec("png"), False),
    UnischemaField("photo", np.uint8, (16, 16, 3), CompressedImageCodec("jpeg", quality=95), False),
    UnischemaField("ragged", np.float32, (None, 2), NdarrayCodec(), True),
    UnischemaField("label", np.str_, (), ScalarCodec(StringType()), False),
])


def test_spark_reads_what_python_wrote_value_for_value(spark, tmp_path):
    rng = np.random.default_rng(3)
    url = f"file://{tmp_path / 'python-written'}"
    rows = [dict(id=i, matrix=rng.standard_normal((4, 5)), packed=rng.integers(-9, 9, (3, 3)).astype(np.int16),
                 grey=rng.integers(0, 255, (6, 7), dtype=np.uint8),
                 photo=np.tile(np.linspace(0, 255, 16, dtype=np.uint8)[:, None, None], (1, 16, 3)),
                 ragged=None if i % 4 == 0 else rng.standard_normal((i % 3 + 1, 2)).astype(np.float32),
                 label=f"l{i}") for i in range(20)]
    with materialize_dataset(spark, url, PythonSchema, row_group_size_mb=1):
        spark.createDataFrame([dict_to_spark_row(PythonSchema, r) for r in rows],
                              PythonSchema.as_spark_schema()).coalesce(2).write.parquet(url)
    with make_reader(url, shuffle_row_groups=False) as reader:
        python = {r.id: r for r in reader}
    spark_rows = {r.id: r for r in spark.read.format("petastorm").load(url).collect()}
    assert sorted(spark_rows) == sorted(python) == list(range(20))
    for i, p in python.items():
        s = spark_rows[i]
        for field in ("matrix", "packed", "grey"):
            np.testing.assert_array_equal(getattr(s, field), getattr(p, field))
            assert getattr(s, field).dtype == getattr(p, field).dtype
        assert np.abs(s.photo.astype(int) - p.photo.astype(int)).max() <= 3  # JPEG decoders differ by a few levels
        if p.ragged is None:
            assert s.ragged is None
        else:
            np.testing.assert_array_equal(s.ragged, p.ragged)
        assert s.label == p.label


def test_sql_reads_the_format(spark, spark_written):
    url, _ = spark_written
    spark.read.format("petastorm").load(url).createOrReplaceTempView("spark_written")
    row = spark.sql("SELECT tensor_shape(fixed) AS s, tensor_dtype(image) AS d FROM spark_written WHERE id = 3").first()
    assert row == Row(s=[2, 3], d="uint8")


@pytest.mark.parametrize("codec", ["ndarray", "compressed_ndarray"])
def test_python_reads_every_dtype_and_shape_spark_wrote(spark, tmp_path, codec):
    dtypes = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              np.float16, np.float32, np.float64]
    shapes = [(), (0,), (3,), (4, 5, 2)]
    rng = np.random.default_rng(11)
    rows = [[i] + [as_tensor((rng.standard_normal(s) * 50).astype(d)) for d in dtypes for s in shapes]
            for i in range(3)]
    names = [f"{np.dtype(d).name}_{k}" for d in dtypes for k in range(len(shapes))]
    schema = StructType([StructField("id", IntegerType(), False)] + [StructField(n, TensorUDT()) for n in names])
    writer = spark.createDataFrame(rows, schema).write.format("petastorm")
    for name in names:
        writer = writer.option(f"codec.{name}", codec)
    writer.save(str(tmp_path / "every"))
    with make_reader(f"file://{tmp_path / 'every'}", shuffle_row_groups=False) as reader:
        got = {r.id: r for r in reader}
    for row in rows:
        for name, expected in zip(names, row[1:]):
            value = getattr(got[row[0]], name)
            assert value.dtype == expected.dtype and value.shape == expected.shape, name
            np.testing.assert_array_equal(value, expected)


def test_a_failed_append_changes_nothing_python_reads(spark, tmp_path):
    """Appending float64 tensors to a float32 (2, 3) dataset fails before any of its files is moved in: the Python
    reader reads exactly the old rows, and a valid append then adds its rows."""
    schema = StructType([StructField("id", IntegerType(), False), StructField("t", TensorUDT(), False)])

    def frame(ids, dtype):
        return spark.createDataFrame([(i, as_tensor(np.full((2, 3), i, dtype))) for i in ids], schema).repartition(4)

    def ids_read(url):
        with make_batch_reader(url) as reader:
            return sorted(int(i) for batch in reader for i in batch.id)

    url = f"file://{tmp_path / 'appended'}"
    frame(range(40), np.float32).write.format("petastorm").save(url)
    with pytest.raises(Exception) as failed:
        frame(range(100, 110), np.float64).write.mode("append").format("petastorm").save(url)
    assert ("Column 't': the dataset stores float32 tensors of shape (2, 3); this row holds a float64 tensor of "
            "shape (2, 3)") in str(failed.value)
    assert ids_read(url) == list(range(40))
    frame(range(40, 50), np.float32).write.mode("append").format("petastorm").save(url)
    assert ids_read(url) == list(range(50))


def test_a_null_in_a_non_nullable_column_fails_the_write_naming_it(spark, tmp_path):
    """With verifySchema=False (what tensors need), Spark would store a null in a non-nullable int as 0 and fail on a
    null tensor with a NullPointerException naming no column."""
    schema = StructType([StructField("id", IntegerType(), False), StructField("n", IntegerType(), False),
                         StructField("t", TensorUDT(), False)])
    cases = {"n": [(0, 1, as_tensor(np.zeros(2, np.float32))), (1, None, as_tensor(np.ones(2, np.float32)))],
             "t": [(0, 1, as_tensor(np.zeros(2, np.float32))), (1, 2, None)]}
    for column, rows in cases.items():
        df = spark.createDataFrame(rows, schema, verifySchema=False)
        with pytest.raises(Exception) as failed:
            df.write.format("petastorm").save(str(tmp_path / column))
        assert f"Column '{column}' holds a null, but its type says it cannot" in str(failed.value)
        assert not (tmp_path / column).exists()
