"""The data source and `load_image` on s3a:// (hadoop-aws) against a local S3 server (moto, 127.0.0.1): every save mode,
failed jobs, reading back value-exact, and the Python reader (s3fs) reading what the JVM wrote.

The JVM side runs in a driver process of its own (tests/_s3a_driver.py) started once for this module: jars reach a
JVM only when it starts, and the run's shared session (tests/conftest.py) is started without hadoop-aws and its
700 MB SDK bundle, which no other test needs. The hadoop-aws jars come from `make hadoop-aws`."""
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _s3a_driver import IMG_SHAPE, READY, expected_row
from _spark_processes import LoggedProcess, hadoop_aws_jars, spark_env
from _tensor_json import tensor_from_json
from PIL import Image

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import CompressedImageCodec, NdarrayCodec
from petastorm.etl.dataset_metadata import get_schema_from_dataset_url

pytestmark = pytest.mark.slow

BUCKET = "petastorm-s3a"
DRIVER_START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 240


class DriverError(Exception):
    """A request the driver answered with an error: `error` holds its type, Spark error condition and message."""

    def __init__(self, error):
        super().__init__(f"{error['type']} [{error['condition']}]: {error['message'][:3000]}")
        self.error = error


class Driver:
    """The test's end of the s3a driver process: `call(op, **args)` sends one request and returns its answer."""

    def __init__(self, process, workdir):
        self.process, self.workdir, self._ids = process, workdir, itertools.count()

    def call(self, op, **args):
        n = next(self._ids)
        try:
            self.process.proc.stdin.write(json.dumps({"id": n, "op": op, "args": args}) + "\n")
            self.process.proc.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"the s3a driver has ended (exit code {self.process.proc.poll()}); the end of its "
                                 f"log ({self.process.log_path}):\n{self.process.tail()}") from None
        self.process.wait_for(rf"^REPLY {n}$", REQUEST_TIMEOUT_S)
        answer = json.loads((self.workdir / f"reply-{n}.json").read_text())
        if "error" in answer:
            raise DriverError(answer["error"])
        return answer["ok"]


@pytest.fixture(scope="module")
def driver(moto_s3, tmp_path_factory):
    """The s3a driver process (its own process group), on the run's moto server, with a bucket of this module's."""
    moto_s3.create_bucket(BUCKET)
    workdir = tmp_path_factory.mktemp("s3a-driver")
    command = [sys.executable, str(Path(__file__).with_name("_s3a_driver.py")), str(workdir), moto_s3.endpoint,
               ":".join(hadoop_aws_jars())]
    process = LoggedProcess(command, workdir / "driver.log", spark_env(), stdin=subprocess.PIPE, cwd=workdir)
    try:
        process.wait_for(rf"^{READY}$", DRIVER_START_TIMEOUT_S)
        yield Driver(process, workdir)
        process.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
        process.proc.stdin.close()
        process.proc.wait(120)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def s3(moto_s3):
    """A boto3 client, and the storage_options with which fsspec/s3fs reach the server."""
    return moto_s3.client(), moto_s3.storage_options


def _objects(s3, prefix):
    """{key: ETag} of every object under `prefix` (a folder: `prefix/...`) and the object `prefix` itself."""
    client, _ = s3
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"] == prefix or obj["Key"].startswith(prefix + "/"):
                found[obj["Key"]] = obj["ETag"]
    return found


def _assert_rows(read, ids):
    """`read` (the driver's `read` answer) holds exactly the rows `ids`, value for value."""
    rows = read["rows"]
    assert [r["id"] for r in rows] == sorted(ids)
    for row in rows:
        want = expected_row(row["id"])
        assert row["label"] == want["label"]
        for name in ("vec", "img"):
            got = tensor_from_json(row[name])
            assert got.dtype == want[name].dtype and got.shape == want[name].shape, (name, row["id"])
            np.testing.assert_array_equal(got, want[name], err_msg=f"{name} of row {row['id']}")


def _python_ids(url, options):
    """Ids read by make_reader and make_batch_reader through s3fs, checking every value."""
    with make_reader(url, storage_options=options, shuffle_row_groups=False) as reader:
        rows = list(reader)
    for row in rows:
        want = expected_row(int(row.id))
        assert row.label == want["label"]
        np.testing.assert_array_equal(row.vec, want["vec"])
        np.testing.assert_array_equal(row.img, want["img"])
        assert row.vec.dtype == np.float32 and row.img.dtype == np.uint8
    with make_batch_reader(url, storage_options=options, shuffle_row_groups=False) as reader:
        batches = list(reader)
    batch_ids = sorted(int(i) for b in batches for i in b.id)
    for batch in batches:
        for i, vec, img in zip(batch.id, batch.vec, batch.img):
            np.testing.assert_array_equal(vec, expected_row(int(i))["vec"])
            np.testing.assert_array_equal(img, expected_row(int(i))["img"])
    ids = sorted(int(row.id) for row in rows)
    assert batch_ids == ids
    return ids


def _url(key):
    return f"s3a://{BUCKET}/{key}"


def test_write_then_read_back_through_spark_and_python(driver, s3):
    driver.call("write", url=_url("basic"), start=0, stop=12)
    objects = _objects(s3, "basic")
    assert "basic/_common_metadata" in objects and "basic/_SUCCESS" in objects
    assert not any("_temporary" in key for key in objects), objects
    read = driver.call("read", url=_url("basic"))
    _assert_rows(read, range(12))
    assert read["metadata"]["vec"] == {"dtype": "float32", "shape": [2, 3], "codec": "ndarray"}
    assert read["metadata"]["img"] == {"dtype": "uint8", "shape": [8, 8, 3], "codec": "png"}
    # The Python reader through s3fs: the s3:// and s3a:// spellings of the same dataset.
    _, options = s3
    schema = get_schema_from_dataset_url(f"s3://{BUCKET}/basic", storage_options=options)
    assert isinstance(schema.fields["vec"].codec, NdarrayCodec) and schema.fields["vec"].shape == (2, 3)
    assert isinstance(schema.fields["img"].codec, CompressedImageCodec) and schema.fields["img"].shape == IMG_SHAPE
    assert _python_ids(f"s3://{BUCKET}/basic", options) == list(range(12))
    assert _python_ids(_url("basic"), options) == list(range(12))


def test_errorifexists_refuses_an_existing_dataset_and_leaves_it(driver, s3):
    driver.call("write", url=_url("exists"), start=0, stop=5)
    before = _objects(s3, "exists")
    with pytest.raises(DriverError) as failure:
        driver.call("write", url=_url("exists"), start=100, stop=103)
    assert failure.value.error["condition"] == "PATH_ALREADY_EXISTS", failure.value
    assert _objects(s3, "exists") == before
    _assert_rows(driver.call("read", url=_url("exists")), range(5))


def test_overwrite_replaces_the_dataset(driver, s3):
    driver.call("write", url=_url("overwrite"), start=0, stop=6)
    old = _objects(s3, "overwrite")
    driver.call("write", url=_url("overwrite"), start=20, stop=24, mode="overwrite")
    new = _objects(s3, "overwrite")
    assert not [key for key in old if "part-" in key and key in new], "old data files are still there"
    _assert_rows(driver.call("read", url=_url("overwrite")), range(20, 24))
    assert _python_ids(f"s3://{BUCKET}/overwrite", s3[1]) == list(range(20, 24))


def test_append_adds_rows(driver, s3):
    driver.call("write", url=_url("append"), start=0, stop=5)
    old = _objects(s3, "append")
    driver.call("write", url=_url("append"), start=5, stop=9, mode="append")
    new = _objects(s3, "append")
    assert all(new[key] == etag for key, etag in old.items() if "part-" in key), "appending changed old files"
    assert len([k for k in new if "part-" in k]) > len([k for k in old if "part-" in k])
    _assert_rows(driver.call("read", url=_url("append")), range(9))
    assert _python_ids(f"s3://{BUCKET}/append", s3[1]) == list(range(9))


def test_ignore_does_nothing_to_an_existing_dataset(driver, s3):
    driver.call("write", url=_url("ignore"), start=0, stop=4)
    before = _objects(s3, "ignore")
    driver.call("write", url=_url("ignore"), start=50, stop=55, mode="ignore")
    assert _objects(s3, "ignore") == before
    _assert_rows(driver.call("read", url=_url("ignore")), range(4))
    # On a new path, ignore writes.
    driver.call("write", url=_url("ignore-new"), start=0, stop=3, mode="ignore")
    _assert_rows(driver.call("read", url=_url("ignore-new")), range(3))


def _assert_task_failure(failure, reason):
    message = failure.value.error["message"]
    assert reason in message, message[:3000]
    # Thrown in a task of the write stage (the JVM stack trace), not while planning or in an earlier stage.
    assert "org.apache.spark.scheduler.ResultTask.runTask" in message, message[:6000]


@pytest.mark.parametrize("mode", ["errorifexists", "overwrite", "append"])
def test_failed_job_on_a_new_path_leaves_nothing(driver, s3, mode):
    key = f"failed-new-{mode}"
    with pytest.raises(DriverError) as failure:
        driver.call("write", url=_url(key), start=0, stop=10, mode=mode, fail_at=7)
    _assert_task_failure(failure, "injected task failure at id 7")
    assert _objects(s3, key) == {}


@pytest.mark.parametrize("mode,failure,reason", [
    ("overwrite", {"fail_at": 35}, "injected task failure at id 35"),
    ("append", {"null_at": 36}, "Column 'label' holds a null"),  # in the non-nullable column, in one of two tasks
    ("append", {"fail_at": 33}, "injected task failure at id 33"),
])
def test_failed_job_leaves_exactly_the_old_dataset(driver, s3, mode, failure, reason):
    key = f"failed-{mode}-{next(iter(failure))}"
    driver.call("write", url=_url(key), start=0, stop=6)
    before = _objects(s3, key)
    with pytest.raises(DriverError) as failed:
        driver.call("write", url=_url(key), start=30, stop=40, mode=mode, **failure)
    _assert_task_failure(failed, reason)
    assert _objects(s3, key) == before
    _assert_rows(driver.call("read", url=_url(key)), range(6))
    assert _python_ids(f"s3://{BUCKET}/{key}", s3[1]) == list(range(6))
    if mode == "append":  # a valid append still works afterwards
        driver.call("write", url=_url(key), start=6, stop=10, mode="append")
        _assert_rows(driver.call("read", url=_url(key)), range(10))
        assert _python_ids(f"s3://{BUCKET}/{key}", s3[1]) == list(range(10))


def _images():
    """Three small PNGs of different sizes and modes, and the pixels Pillow decodes from each."""
    rng = np.random.default_rng(7)
    pictures = {"rgb.png": rng.integers(0, 256, (6, 10, 3), dtype=np.uint8),
                "grey.png": rng.integers(0, 256, (9, 5), dtype=np.uint8),
                "rgba.png": rng.integers(0, 256, (7, 7, 4), dtype=np.uint8)}
    files = {}
    for name, pixels in pictures.items():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        files[name] = buffer.getvalue()
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(files[name]))), pixels)
    return pictures, files


def test_load_image_reads_s3a_paths(driver, s3, tmp_path):
    client, options = s3
    pictures, files = _images()
    local = tmp_path / "images"
    local.mkdir()
    for name, data in files.items():
        client.put_object(Bucket=BUCKET, Key=f"images/{name}", Body=data)
        (local / name).write_bytes(data)
    names = sorted(files)
    s3a_paths = [_url(f"images/{name}") for name in names]
    local_paths = [(local / name).as_uri() for name in names]

    # The file's own pixels and channels, exactly.
    for name, got in zip(names, driver.call("load_images", paths=s3a_paths)):
        want = pictures[name] if pictures[name].ndim == 3 else pictures[name][:, :, None]
        np.testing.assert_array_equal(tensor_from_json(got), want, err_msg=name)
    # Resized and converted: the same as from a local copy of the same bytes.
    for size, channels in (((4, 6), 3), ((12, 3), 1), ((5, 5), 4)):
        from_s3 = driver.call("load_images", paths=s3a_paths, size=size, channels=channels)
        from_disk = driver.call("load_images", paths=local_paths, size=size, channels=channels)
        for name, a, b in zip(names, from_s3, from_disk):
            assert tensor_from_json(a).shape == (*size, channels), name
            np.testing.assert_array_equal(tensor_from_json(a), tensor_from_json(b), err_msg=f"{name} {size} {channels}")
    # A missing object is a null image, counted.
    failures = driver.call("image_failure_count")
    assert driver.call("load_images", paths=[_url("images/missing.png"), s3a_paths[0]])[0] is None
    assert driver.call("image_failure_count") == failures + 1

    # A dataset of images loaded from s3a, written to s3a, read by the Python reader through s3fs.
    driver.call("write_images", paths=s3a_paths, url=_url("image-ds"), size=[4, 6])
    loaded = driver.call("load_images", paths=local_paths, size=[4, 6], channels=3)
    want = {p: tensor_from_json(t) for p, t in zip(s3a_paths, loaded)}
    with make_reader(f"s3://{BUCKET}/image-ds", storage_options=options) as reader:
        got = {row.path: row.image for row in reader}
    assert sorted(got) == sorted(want)
    for path, image in got.items():
        assert image.dtype == np.uint8 and image.shape == (4, 6, 3)
        np.testing.assert_array_equal(image, want[path], err_msg=path)
