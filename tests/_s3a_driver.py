"""A Spark driver for tests/test_s3a.py: a local SparkSession with the petastorm jar and hadoop-aws, s3a:// pointed at a
local S3 server, that runs the test's requests one at a time.

Jars reach a JVM only when it starts, and the test run's shared session has none of hadoop-aws, so the s3a tests
talk to this process: each request is a JSON line on stdin, `{"id": n, "op": name, "args": {...}}`; the answer is
written to `<workdir>/reply-<n>.json` (`{"ok": result}` or `{"error": {...}}`), then `REPLY <n>` is printed.

    python tests/_s3a_driver.py WORKDIR ENDPOINT HADOOP_AWS_JAR[:JAR...]

The rows written are a function of their id (`expected_row`), so the test checks every value it reads back.
"""
import json
import os
import sys
import traceback

import numpy as np
from _tensor_json import tensor_to_json

READY = "S3A DRIVER READY"
ACCESS_KEY = SECRET_KEY = "testing"
REGION = "us-east-1"
VEC_SHAPE, IMG_SHAPE = (2, 3), (8, 8, 3)


def expected_row(i):
    """The values of row `i`: what `_frame` writes."""
    vec = (i + np.arange(6) * 0.25).astype(np.float32).reshape(VEC_SHAPE)
    img = ((i * 7 + np.arange(int(np.prod(IMG_SHAPE)))) % 256).astype(np.uint8).reshape(IMG_SHAPE)
    return {"id": i, "label": f"row-{i}", "vec": vec, "img": img}


def s3a_conf(endpoint):
    """The Hadoop settings that point s3a at a local S3 server (path-style, plain HTTP, static credentials)."""
    return {
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.endpoint.region": REGION,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": "false",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": ACCESS_KEY,
        "fs.s3a.secret.key": SECRET_KEY,
        "fs.s3a.attempts.maximum": "2",  # a misconfiguration fails in seconds, not minutes
        "fs.s3a.retry.limit": "2",
    }


def _session(endpoint, extra_jars):
    from pyspark.sql import SparkSession

    from petastorm.spark import configure_spark

    builder = (SparkSession.builder.master("local[2]").appName("petastorm-s3a-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.pyspark.jvmStacktrace.enabled", "true")  # errors say where they were thrown
               # On the driver's classpath from the start (in local mode the executors are the driver): Hadoop
               # finds S3AFileSystem there, and the 700 MB SDK bundle is not copied as spark.jars would be.
               .config("spark.driver.extraClassPath", extra_jars))
    for key, value in s3a_conf(endpoint).items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    spark = configure_spark(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _frame(spark, start, stop, partitions=2, fail_at=None, null_at=None):
    """Rows `start` to `stop - 1` (`expected_row`) in `partitions` tasks: `id` int and `label` string, both
    non-nullable, `vec` a float32 (2, 3) tensor and `img` a uint8 (8, 8, 3) tensor (stored as PNG by `write`).
    `null_at` puts a null into the non-nullable `label` of that row; `fail_at` makes the task holding that row
    throw."""
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    schema = StructType([StructField("id", IntegerType(), False), StructField("label", StringType(), False)])
    rows = [(i, None if i == null_at else f"row-{i}") for i in range(start, stop)]
    # One stage, no shuffle: the null check and the failure happen in the write tasks.
    df = spark.createDataFrame(spark.sparkContext.parallelize(rows, partitions), schema, verifySchema=False)
    size = int(np.prod(IMG_SHAPE))
    df = df.selectExpr(
        "id", "label",
        "array_to_tensor(transform(sequence(0, 5), i -> CAST(id AS DOUBLE) + i * 0.25D), array(2, 3), 'float32')"
        " AS vec",
        f"array_to_tensor(transform(sequence(0, {size - 1}), i -> (id * 7 + i) % 256), array(8, 8, 3), 'uint8')"
        " AS img")
    if fail_at is not None:
        k = int(fail_at)
        df = df.where(f"IF(id = {k}, raise_error('injected task failure at id {k}'), TRUE)")
    return df


def op_write(spark, url, start, stop, mode="errorifexists", **frame_args):
    (_frame(spark, start, stop, **frame_args).write.format("petastorm").option("codec.img", "png")
     .mode(mode).save(url))
    return None


def op_read(spark, url):
    """Every row of the dataset at `url` through `format("petastorm")`, by id, and the columns' petastorm metadata."""
    df = spark.read.format("petastorm").load(url)
    rows = [{"id": r.id, "label": r.label, "vec": tensor_to_json(r.vec), "img": tensor_to_json(r.img)}
            for r in df.orderBy("id").collect()]
    return {"rows": rows, "metadata": {f.name: f.metadata.get("petastorm") for f in df.schema.fields}}


def op_load_images(spark, paths, size=None, channels=None):
    """`load_image(path[, h, w[, c]])` of each path, in order (null where the image cannot be read)."""
    args = ["path"] + ([str(size[0]), str(size[1])] if size else (["NULL", "NULL"] if channels else []))
    args += [str(channels)] if channels else []
    df = spark.createDataFrame([(i, p) for i, p in enumerate(paths)], "n int, path string")
    # Sorted here, not by orderBy, whose sampling job would load every image (and count every failure) twice.
    rows = sorted(df.selectExpr("n", f"load_image({', '.join(args)}) AS image").collect(), key=lambda r: r.n)
    return [tensor_to_json(r.image) for r in rows]


def op_write_images(spark, paths, url, size):
    """A dataset of `load_image(path, h, w, 3)` rows (`path`, `image` stored as PNG) written to `url`."""
    df = spark.createDataFrame([(p,) for p in paths], "path string").repartition(2)
    (df.selectExpr("path", f"load_image(path, {int(size[0])}, {int(size[1])}, 3) AS image")
     .write.format("petastorm").option("codec.image", "png").save(url))
    return None


def op_image_failure_count(spark):
    from petastorm.spark.functions import image_failure_count

    return image_failure_count(spark)


def _error(exc):
    from petastorm.spark.session import error_condition

    return {"type": type(exc).__name__, "condition": error_condition(exc), "message": str(exc)[:20000]}


def main(workdir, endpoint, extra_jars):
    spark = _session(endpoint, extra_jars)
    print(READY, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "stop":
            break
        try:
            answer = {"ok": globals()["op_" + request["op"]](spark, **request.get("args", {}))}
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the test, which judges it
            traceback.print_exc()
            answer = {"error": _error(exc)}
        path = os.path.join(workdir, f"reply-{request['id']}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(answer, out)
        os.replace(path + ".tmp", path)
        print(f"REPLY {request['id']}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])
