"""The application tests/test_cluster.py submits to a standalone cluster: writes a dataset with tensor and image columns
through `format("petastorm")`, reads it back, and writes what it read as JSON to RESULT_PATH (a file, not stdout,
where the JVM's log lines could interleave with it).

    spark-submit ... tests/_cluster_job.py IMAGES_DIR DATASET_URL RESULT_PATH

Row `i` holds `vec` (float32 (2, 3) from array_to_tensor), `photo` (`load_image` of IMAGES_DIR/img-<i>.png, which the
test wrote with Pillow) and `drawn` (a uint8 tensor through encode_image and decode_image), all a function of `i`
(`expected`); the images are stored as PNG."""
import json
import sys

import numpy as np
from _tensor_json import tensor_to_json

ROWS = 6
PHOTO_SHAPE = (8, 8, 3)


def expected(i):
    return {
        "vec": (i + np.arange(6) * 0.5).astype(np.float32).reshape(2, 3),
        "photo": ((i * 11 + np.arange(int(np.prod(PHOTO_SHAPE)))) % 256).astype(np.uint8).reshape(PHOTO_SHAPE),
        "drawn": ((i * 5 + np.arange(48) * 3) % 256).astype(np.uint8).reshape(4, 4, 3),
    }


def main(images_dir, url, result_path):
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("petastorm-cluster-test").getOrCreate()
    df = spark.range(ROWS, numPartitions=2).selectExpr(
        "CAST(id AS INT) AS id",
        "array_to_tensor(transform(sequence(0, 5), k -> CAST(id AS DOUBLE) + k * 0.5D), array(2, 3), 'float32')"
        " AS vec",
        f"load_image(concat('{images_dir}/img-', id, '.png')) AS photo",
        "decode_image(encode_image(array_to_tensor(transform(sequence(0, 47), k -> (id * 5 + k * 3) % 256),"
        " array(4, 4, 3), 'uint8'), 'png')) AS drawn")
    df.write.format("petastorm").option("codec.photo", "png").option("codec.drawn", "png").save(url)
    back = spark.read.format("petastorm").load(url)
    rows = [{"id": r.id, "vec": tensor_to_json(r.vec), "photo": tensor_to_json(r.photo),
             "drawn": tensor_to_json(r.drawn)}
            for r in back.orderBy("id").collect()]
    sc = spark.sparkContext
    result = {"master": sc.master, "executors": len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1,
              "jars": sc.getConf().get("spark.jars", ""), "rows": rows,
              "metadata": {f.name: f.metadata.get("petastorm") for f in back.schema.fields}}
    with open(result_path, "w") as out:
        json.dump(result, out)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])
