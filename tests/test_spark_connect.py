"""The public APIs that take a SparkSession, on a classic session and on a Spark Connect session (a real server in a
subprocess, see conftest): each test runs with both and asserts the same. The RDD-based APIs raise on Connect."""
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from _images import write_labelled_pngs
from pyspark.sql.types import IntegerType

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import get_schema_from_dataset_url, materialize_dataset
from petastorm.spark import SparkDatasetConverter, make_spark_converter
from petastorm.spark import _converter_cache as converter_cache
from petastorm.spark import _converter_write as converter_write
from petastorm.spark.functions import image_failure_count, load_image
from petastorm.spark.ingest import OutputExistsError, ingest_images
from petastorm.spark.session import SparkConnectUnsupportedError, is_connect
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

CONF = SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF


@pytest.fixture(params=["classic", pytest.param("connect", marks=pytest.mark.slow)])
def session(request):
    """The classic `spark` session, then a Spark Connect session (its server starts on first use)."""
    return request.getfixturevalue("spark" if request.param == "classic" else "spark_connect")


@pytest.fixture
def cache_dir(session, tmp_path):
    parent = tmp_path / "cache"
    parent.mkdir()
    session.conf.set(CONF, parent.as_uri())
    yield parent
    session.conf.unset(CONF)


def _frame(session):
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

    from petastorm.spark import TensorUDT, as_tensor

    schema = StructType([
        StructField("id", IntegerType(), False),
        StructField("d", DoubleType(), False),
        StructField("vec", VectorUDT(), False),
        StructField("tensor", TensorUDT(), False),
        StructField("nested", ArrayType(ArrayType(DoubleType(), False), False), False),
        StructField("name", StringType(), False),
    ])
    rows = [(i, i + 0.5, Vectors.dense([i, 2.0 * i]), as_tensor(np.full((2, 3), i, np.float64)),
             [[float(i), 0.0], [1.0, float(i)]], f"n{i}") for i in range(10)]
    return session.createDataFrame(rows, schema).repartition(2)


def _read_all(url):
    with make_batch_reader(url, shuffle_row_groups=False) as reader:
        batches = [b._asdict() for b in reader]
    data = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    order = np.argsort(data["id"])
    return {k: v[order] for k, v in data.items()}


def test_converter_values_reuse_and_delete(session, cache_dir):
    df = _frame(session)
    converter = make_spark_converter(df)
    assert len(converter) == 10 and converter.cache_dir_url.startswith(cache_dir.as_uri())
    data = _read_all(converter.cache_dir_url)
    assert data["d"].dtype == np.float32 and data["tensor"].shape == (10, 2, 3) and data["vec"].shape == (10, 2)
    np.testing.assert_allclose(data["d"], np.arange(10) + 0.5)
    np.testing.assert_array_equal(data["tensor"][4], np.full((2, 3), 4, np.float32))
    np.testing.assert_array_equal(data["vec"][3], [3, 6])
    np.testing.assert_array_equal(data["nested"][7], [[7, 0], [1, 7]])
    assert data["name"].tolist() == [f"n{i}" for i in range(10)]

    assert make_spark_converter(df).cache_dir_url == converter.cache_dir_url
    other = make_spark_converter(df.filter("id < 4"))
    assert len(other) == 4 and other.cache_dir_url != converter.cache_dir_url
    converter.delete()
    assert not os.path.exists(converter.cache_dir_url[len("file://"):])
    assert os.path.isdir(other.cache_dir_url[len("file://"):])
    recreated = make_spark_converter(df)
    assert recreated.cache_dir_url == converter.cache_dir_url and len(recreated) == 10
    recreated.delete()
    other.delete()
    assert sorted(os.listdir(cache_dir)) == []


def test_converter_torch_loader_and_reuse_by_another_client(session, cache_dir, monkeypatch):
    import torch

    df = _frame(session).drop("name")
    converter = make_spark_converter(df)
    with converter.make_torch_dataloader(batch_size=4, num_epochs=1) as loader:
        batches = list(loader)
    assert sorted(torch.cat([b["id"] for b in batches]).tolist()) == list(range(10))
    assert batches[0]["tensor"].shape == (4, 2, 3) and batches[0]["d"].dtype == torch.float32
    # As in another client process of the same Spark application: nothing registered here; the marker matches.
    monkeypatch.setattr(converter_cache, "_registry", {})
    monkeypatch.setattr(converter_cache, "_created_dirs", set())
    reused = make_spark_converter(df)
    assert reused.cache_dir_url == converter.cache_dir_url and converter_cache._created_dirs == set()


def test_converter_keys_file_plans_by_their_files(session, cache_dir, tmp_path):
    source = tmp_path / "source"
    session.range(20).selectExpr("id", "cast(id as double) * 2 as x").write.parquet(str(source))
    first = make_spark_converter(session.read.parquet(str(source)).filter("id % 2 = 0"))
    assert make_spark_converter(session.read.parquet(str(source)).filter("id % 2 = 0")).cache_dir_url \
        == first.cache_dir_url
    session.range(30).selectExpr("id", "cast(id as double) as x").write.mode("overwrite").parquet(str(source))
    changed = make_spark_converter(session.read.parquet(str(source)).filter("id % 2 = 0"))
    assert changed.cache_dir_url != first.cache_dir_url and len(changed) == 15


def test_converter_without_the_data_source_says_how_to_add_it(session, cache_dir, monkeypatch):
    # A source name no jar provides: Spark's own DATA_SOURCE_NOT_FOUND becomes an error saying what to add where.
    monkeypatch.setattr(converter_write, "SOURCE", "petastorm_not_installed")
    expected = r"Spark Connect server.*--jars .*spark\.sql\.extensions" if is_connect(session) else \
        r"configure_spark.*jar_path"
    with pytest.raises(RuntimeError, match=expected):
        make_spark_converter(session.range(3).selectExpr("id", "id * 0.5 as v"))
    assert list(cache_dir.iterdir()) == []


BigRowSchema = Unischema("BigRowSchema", [
    UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("vec", np.float32, (16384,), NdarrayCodec(), False),
])


def test_materialize_dataset_sets_the_row_group_size_and_writes_the_schema(session, tmp_path):
    url = f"file://{tmp_path / 'ds'}"
    session.conf.set("parquet.block.size", "7777777")
    try:
        with materialize_dataset(session, url, BigRowSchema, row_group_size_mb=1):
            assert session.conf.get("parquet.block.size") == str(1024 * 1024)
            rows = [dict_to_spark_row(BigRowSchema, {"id": i, "vec": np.full(16384, i, np.float32)})
                    for i in range(40)]
            session.createDataFrame(rows, BigRowSchema.as_spark_schema()).coalesce(1).write.parquet(url)
        assert session.conf.get("parquet.block.size") == "7777777"
    finally:
        session.conf.unset("parquet.block.size")
    assert get_schema_from_dataset_url(url) == BigRowSchema
    files = sorted((tmp_path / "ds").glob("part-*.parquet"))
    assert len(files) == 1 and pq.ParquetFile(files[0]).metadata.num_row_groups >= 2  # 40 rows of 64 KiB, 1 MiB
    with make_reader(url, shuffle_row_groups=False) as reader:
        read = {r.id: r.vec for r in reader}
    assert sorted(read) == list(range(40))
    np.testing.assert_array_equal(read[17], np.full(16384, 17, np.float32))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six 8x8 PNGs with integer labels, one corrupt file, and the labels CSV (with a header line)."""
    folder = tmp_path_factory.mktemp("connect-images")
    return folder, write_labelled_pngs(folder, [8] * 6, [i % 3 for i in range(6)], seed=3)


def test_ingest_images_rows_failures_and_existing_output(session, images, tmp_path):
    folder, pixels = images
    url = f"file://{tmp_path / 'ingested'}"
    result = ingest_images(session, str(folder / "labels.csv"), str(folder), url, codec="png")
    assert (result.rows, result.failed_images, result.output) == (6, 1, url)
    with make_reader(url) as reader:
        rows = {r.filename: r for r in reader}
    assert sorted(rows) == sorted(pixels)
    for name, expected in pixels.items():
        np.testing.assert_array_equal(rows[name].image, expected)
        assert rows[name].label == int(name[4]) % 3
    failures = image_failure_count(session)
    with pytest.raises(OutputExistsError, match=f"^ingest: output {url} already exists; use mode 'overwrite'"):
        ingest_images(session, str(folder / "labels.csv"), str(folder), url)
    assert image_failure_count(session) == failures  # refused before any image (broken.png too) was read
    resized = ingest_images(session, str(folder / "labels.csv"), str(folder), url, size=(4, 5), mode="overwrite")
    assert resized.rows == 6 and get_schema_from_dataset_url(url).image.shape == (4, 5, 3)


def test_ingest_images_text_labels_get_an_index(session, images, tmp_path):
    folder, _ = images
    animals = {f"img_{i}.png": ("cat", "dog", "bird")[i % 3] for i in range(6)}
    labels = tmp_path / "animals.csv"
    labels.write_text("".join(f"{name},{label}\n" for name, label in animals.items()))  # no header line
    url = f"file://{tmp_path / 'animals'}"
    assert ingest_images(session, str(labels), str(folder), url).rows == 6
    with make_reader(url) as reader:
        got = {r.filename: (r.label, r.label_index) for r in reader}
    index = {"bird": 0, "cat": 1, "dog": 2}
    assert got == {name: (label, index[label]) for name, label in animals.items()}


def test_image_failure_count_counts_a_bad_image(session, images):
    folder, _ = images
    before = image_failure_count(session)
    df = session.createDataFrame([((folder / "broken.png").as_uri(),), ((folder / "img_0.png").as_uri(),)], "p string")
    images_read = [r.image for r in df.select(load_image("p").alias("image")).collect()]
    assert images_read[0] is None and images_read[1] is not None
    assert image_failure_count(session) == before + 1


@pytest.mark.slow
def test_rdd_based_apis_raise_a_clear_error_on_connect(spark_connect, tmp_path):
    from pyspark.sql import SparkSession

    from petastorm.etl.petastorm_generate_metadata import generate_petastorm_metadata
    from petastorm.etl.rowgroup_indexers import SingleFieldIndexer
    from petastorm.etl.rowgroup_indexing import build_rowgroup_index
    from petastorm.spark import configure_spark
    from petastorm.spark_utils import dataset_as_rdd

    url = f"file://{tmp_path / 'absent'}"  # the error comes before the dataset is opened
    with pytest.raises(SparkConnectUnsupportedError, match=r'dataset_as_rdd .*spark\.read\.format\("petastorm"\)'):
        dataset_as_rdd(url, spark_connect)
    with pytest.raises(SparkConnectUnsupportedError, match="build_rowgroup_index .*classic SparkSession"):
        build_rowgroup_index(url, spark_connect, [SingleFieldIndexer("by_id", "id")])
    with pytest.raises(SparkConnectUnsupportedError, match="use_summary_metadata=False"):
        generate_petastorm_metadata(spark_connect, url, use_summary_metadata=True)
    with pytest.raises(SparkConnectUnsupportedError, match="--jars .*spark.sql.extensions"):
        configure_spark(SparkSession.builder.remote("sc://127.0.0.1:1"))
