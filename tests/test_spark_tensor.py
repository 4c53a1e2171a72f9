"""TensorUDT columns between numpy and Spark, and the tensor SQL functions on the JVM."""
import numpy as np
import pyspark
import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType

from petastorm.spark import TensorUDT, as_tensor
from petastorm.spark.functions import array_to_tensor, tensor_dtype, tensor_reshape, tensor_shape, tensor_to_array
from petastorm.spark.tensor import from_struct, to_struct

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
          np.float16, np.float32, np.float64]
SHAPES = [(), (0,), (3,), (4, 128, 30, 3)]


def _sample(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    if dtype is np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(size=shape) * 1e3).astype(dtype)


def _schema():
    return StructType([StructField("id", IntegerType(), False), StructField("t", TensorUDT(), True)])


def test_every_dtype_and_shape_survives_create_and_collect(spark):
    arrays = [_sample(dt, shape, seed) for seed, (dt, shape) in enumerate((d, s) for d in DTYPES for s in SHAPES)]
    df = spark.createDataFrame([(i, as_tensor(a)) for i, a in enumerate(arrays)], _schema())
    assert isinstance(df.schema["t"].dataType, TensorUDT)
    back = {row.id: row.t for row in df.collect()}
    assert len(back) == len(arrays)
    for i, expected in enumerate(arrays):
        got = back[i]
        assert isinstance(got, np.ndarray)
        assert got.dtype == expected.dtype, (i, got.dtype, expected.dtype)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_schema_is_inferred_from_as_tensor_values(spark):
    df = spark.createDataFrame([(1, as_tensor(np.ones((2, 2), np.float32)))], ["id", "t"])
    assert isinstance(df.schema["t"].dataType, TensorUDT)
    np.testing.assert_array_equal(df.first().t, np.ones((2, 2), np.float32))


def test_plain_ndarrays_need_verify_schema_off(spark):
    df = spark.createDataFrame([(1, np.arange(4, dtype=np.int16))], _schema(), verifySchema=False)
    assert isinstance(df.first().t, np.ndarray) and df.first().t.dtype == np.int16


def test_tensor_columns_pass_through_the_jvm_and_parquet(spark, tmp_path):
    arrays = [_sample(np.float32, (2, 3), 1), _sample(np.uint16, (5,), 2), _sample(np.int64, (), 3)]
    df = spark.createDataFrame([(i, as_tensor(a)) for i, a in enumerate(arrays)], _schema())
    df.write.parquet(str(tmp_path / "t"))
    back = spark.read.parquet(str(tmp_path / "t")).orderBy("id").collect()
    assert isinstance(spark.read.parquet(str(tmp_path / "t")).schema["t"].dataType, TensorUDT)
    for row, expected in zip(back, arrays):
        np.testing.assert_array_equal(row.t, expected)
        assert row.t.dtype == expected.dtype


def test_nulls_stay_null(spark):
    df = spark.createDataFrame([(0, None), (1, as_tensor(np.arange(3)))], _schema())
    assert [r.t is None for r in df.orderBy("id").collect()] == [True, False]


def test_deserialised_arrays_are_zero_copy_views():
    descr, shape, data = to_struct(np.arange(6, dtype=np.float32).reshape(2, 3))
    arr = from_struct(descr, shape, data)
    assert arr.base is not None and not arr.flags.writeable
    assert (descr, shape) == ("<f4", [2, 3])


def test_big_endian_and_non_contiguous_inputs_are_normalised():
    a = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    descr, shape, data = to_struct(a)
    assert descr == "<i4" and shape == [3, 2]
    np.testing.assert_array_equal(from_struct(descr, shape, data), a)


@pytest.mark.parametrize(
    "value, message",
    [
        (np.array(["a", "b"]), "A tensor holds bool, integer or float elements; got dtype <U1"),
        (np.array([1 + 2j]), "got dtype complex128"),
        (np.array([{"a": 1}], dtype=object), "got dtype object"),
    ],
)
def test_unsupported_dtypes_are_refused(spark, value, message):
    with pytest.raises(ValueError, match=message):
        spark.createDataFrame([(0, value)], _schema(), verifySchema=False).collect()


@pytest.mark.parametrize(
    "struct, message",
    [
        (("<f4", [2, 3], b"\x00" * 20), r"dtype float32 and shape \(2, 3\) needs 24 bytes \(6 elements of 4 bytes\), got 20"),
        (("<c8", [1], b"\x00" * 8), "Unknown tensor dtype '<c8'"),
        (("|u1", [2, -1], b"\x00" * 2), "negative dimension"),
    ],
)
def test_malformed_structs_are_refused(struct, message):
    with pytest.raises(ValueError, match=message):
        TensorUDT().deserialize(struct)


def test_sql_functions(spark):
    spark.createDataFrame([(0, as_tensor(np.arange(24, dtype=np.float64).reshape(2, 3, 4)))], _schema()).createOrReplaceTempView(
        "tensors"
    )
    row = spark.sql(
        "SELECT tensor_shape(t) AS shape, tensor_dtype(t) AS dtype, tensor_to_array(t) AS flat, "
        "array_to_tensor(array(1, 2, 3, 4, 5, 6), array(3, 2), 'uint8') AS built FROM tensors"
    ).first()
    assert row.shape == [2, 3, 4]
    assert row.dtype == "float64"
    assert row.flat == [float(v) for v in range(24)]
    assert row.built.dtype == np.uint8 and row.built.shape == (3, 2)
    np.testing.assert_array_equal(row.built, np.arange(1, 7, dtype=np.uint8).reshape(3, 2))


def test_python_function_wrappers(spark):
    df = spark.createDataFrame([Row(a=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])])
    out = df.select(array_to_tensor("a", [2, -1], "float16").alias("t")).select(
        "t",
        tensor_shape("t").alias("shape"),
        tensor_dtype(F.col("t")).alias("dtype"),
        tensor_to_array("t", "int32").alias("ints"),
        tensor_reshape("t", [3, 2]).alias("r"),
    ).first()
    assert out.t.dtype == np.float16 and out.t.shape == (2, 3)
    assert out.shape == [2, 3] and out.dtype == "float16" and out.ints == [1, 2, 3, 4, 5, 6]
    assert out.r.shape == (3, 2)
    assert isinstance(df.select(array_to_tensor("a", [2, 3]).alias("t")).schema["t"].dataType, TensorUDT)


def _error(spark, sql):
    with pytest.raises(Exception) as info:
        spark.sql(sql).collect()
    return str(info.value)


def test_wrong_element_count_says_expected_and_got(spark):
    assert "array_to_tensor: Shape (2, 3) needs 6 elements, got 5" in _error(
        spark, "SELECT array_to_tensor(array(1, 2, 3, 4, 5), array(2, 3))"
    )


def test_unknown_dtype_and_negative_dims_are_errors(spark):
    assert "Unknown tensor dtype 'complex64'" in _error(spark, "SELECT array_to_tensor(array(1), array(1), 'complex64')")
    assert "negative dimension -3" in _error(spark, "SELECT array_to_tensor(array(1, 2, 3), array(-3))")
    assert "Value -1 at index 0 does not fit uint8" in _error(spark, "SELECT array_to_tensor(array(-1), array(1), 'uint8')")


@pytest.mark.parametrize("arrow", ["true", "false"])
def test_to_pandas_and_back_with_and_without_arrow(spark, arrow):
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", arrow)
    try:
        arrays = [np.arange(6, dtype=np.float32).reshape(2, 3) + i for i in range(3)]
        df = spark.createDataFrame([(i, as_tensor(a)) for i, a in enumerate(arrays)], _schema())
        pdf = df.toPandas().sort_values("id")
        for got, expected in zip(pdf.t, arrays):
            np.testing.assert_array_equal(got, expected)
        back = spark.createDataFrame(pdf, _schema()).orderBy("id").collect()
        np.testing.assert_array_equal(back[2].t, arrays[2])
    finally:
        spark.conf.unset("spark.sql.execution.arrow.pyspark.enabled")


@pytest.mark.skipif(tuple(int(p) for p in pyspark.__version__.split(".")[:2]) < (4, 2),
                    reason="before pyspark 4.2, mapInPandas does not serialize the UDT values a function returns; "
                    "return TensorUDT().serialize(array) there")
def test_map_in_pandas_sees_structs_that_deserialize_and_returns_arrays(spark):
    df = spark.createDataFrame([(i, as_tensor(np.full((2, 2), i, np.int32))) for i in range(4)], _schema())

    def double(batches):
        udt = TensorUDT()
        for pdf in batches:
            pdf["t"] = [udt.deserialize(v) * 2 for v in pdf["t"]]  # Spark passes each tensor as a dict
            yield pdf

    out = df.mapInPandas(double, df.schema).orderBy("id").collect()
    np.testing.assert_array_equal(out[3].t, np.full((2, 2), 6, np.int32))


def test_map_in_arrow_passes_tensor_structs_through(spark):
    df = spark.createDataFrame([(1, as_tensor(np.eye(2)))], _schema())
    out = df.mapInArrow(lambda batches: batches, df.schema).first()
    np.testing.assert_array_equal(out.t, np.eye(2))
