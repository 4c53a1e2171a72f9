"""Small Petastorm datasets written with pyarrow for the reader-engine tests, and leak checks."""
import multiprocessing
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.types import LongType, StringType

from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.unischema import Unischema, UnischemaField

EngineSchema = Unischema("EngineSchema", [
    UnischemaField("p", np.str_, (), None, False),
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("name", np.str_, (), ScalarCodec(StringType()), False),
    UnischemaField("vec", np.float32, (3,), NdarrayCodec(), False),
    UnischemaField("img", np.uint8, (4, 4, 3), CompressedImageCodec("png"), False),
])
FILES = 4           # 2 partitions x 2 files
GROUPS_PER_FILE = 3
ROWS_PER_GROUP = 5
ROWS = FILES * GROUPS_PER_FILE * ROWS_PER_GROUP        # 60
ROW_GROUPS = FILES * GROUPS_PER_FILE                   # 12


def image_of(i):
    return np.full((4, 4, 3), i % 256, np.uint8)


def encode(field_name, value):
    field = EngineSchema.fields[field_name]
    return bytes(field.codec.encode(field, value))


def write_engine_dataset(root):
    """Ids 0..59 in piece order: file k (partition p=k//2) holds ids 15k..15k+14 in 3 row groups of 5."""
    for k in range(FILES):
        ids = list(range(k * 15, k * 15 + 15))
        table = pa.table({
            "id": pa.array(ids, pa.int64()),
            "name": [f"n{i}" for i in ids],
            "vec": pa.array([encode("vec", np.full(3, i, np.float32)) for i in ids], pa.binary()),
            "img": pa.array([encode("img", image_of(i)) for i in ids], pa.binary()),
        })
        directory = root / f"p={k // 2}"
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, directory / f"part-{k}.parquet", row_group_size=ROWS_PER_GROUP)
    write_dataset_metadata(f"file://{root}", EngineSchema)
    return f"file://{root}"


def engine_threads():
    return [t for t in threading.enumerate() if t.name.startswith("petastorm-")]


def assert_no_leaks():
    """No reader worker threads or processes (nor decode threads) are left."""
    for thread in engine_threads():
        thread.join(timeout=5)
    assert engine_threads() == []
    children = [p for p in multiprocessing.active_children() if p.name.startswith("petastorm-")]
    assert children == []
