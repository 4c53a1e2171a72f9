"""NGram reading with make_reader (the original's semantics)."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import IntegerType, LongType

from petastorm import make_batch_reader, make_reader
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.ngram import NGram
from petastorm.unischema import Unischema, UnischemaField

TsSchema = Unischema("TsSchema", [
    UnischemaField("ts", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("value", np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField("vec", np.float32, (2,), NdarrayCodec(), False),
])
# Two row groups; n-grams never cross a row group.
TIMESTAMPS = [[0, 1, 2, 3, 5, 6, 7, 10, 11, 12], [100, 101, 102, 104, 105]]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("ngram") / "ds"
    root.mkdir()
    field = TsSchema.fields["vec"]
    for k, stamps in enumerate(TIMESTAMPS):
        pq.write_table(pa.table({
            "ts": pa.array(stamps, pa.int64()), "value": pa.array([t * 10 for t in stamps], pa.int32()),
            "vec": pa.array([bytes(field.codec.encode(field, np.full(2, t, np.float32))) for t in stamps],
                            pa.binary())}), root / f"part-{k}.parquet")
    write_dataset_metadata(f"file://{root}", TsSchema)
    return f"file://{root}"


def _expected_starts(length, delta, overlap=True):
    starts = []
    for stamps in TIMESTAMPS:
        previous_end = None
        for i in range(len(stamps) - length + 1):
            window = stamps[i:i + length]
            if not overlap and previous_end is not None and window[0] <= previous_end:
                continue
            if all(b - a <= delta for a, b in zip(window, window[1:])):
                starts.append(window[0])
                previous_end = window[-1]
    return starts


@pytest.mark.parametrize("pool", ["dummy", "thread", "process"])
def test_ngram_windows_and_fields(url, pool):
    ngram = NGram({-1: ["ts", TsSchema.value], 0: ["ts"], 1: ["ts", "v.c"]}, delta_threshold=1,
                  timestamp_field="ts")
    with make_reader(url, schema_fields=ngram, shuffle_row_groups=False, reader_pool_type=pool,
                     workers_count=2) as reader:
        assert reader.ngram is ngram
        grams = list(reader)
    assert [g[-1].ts for g in grams] == _expected_starts(3, 1)
    first = grams[0]
    assert set(first) == {-1, 0, 1}
    assert first[-1]._fields == ("ts", "value") and first[0]._fields == ("ts",) and first[1]._fields == ("ts", "vec")
    assert (first[-1].ts, first[0].ts, first[1].ts) == (0, 1, 2) and first[-1].value == 0
    np.testing.assert_array_equal(first[1].vec, np.full(2, 2, np.float32))


def test_ngram_delta_overlap_and_shuffle(url):
    ngram = NGram({0: ["ts"], 1: ["ts"]}, delta_threshold=2, timestamp_field=TsSchema.ts, timestamp_overlap=False)
    with make_reader(url, schema_fields=ngram, shuffle_row_groups=False) as reader:
        assert [g[0].ts for g in reader] == _expected_starts(2, 2, overlap=False)
    ngram = NGram({0: ["ts"], 1: ["ts"]}, delta_threshold=3, timestamp_field="ts")
    with make_reader(url, schema_fields=ngram, shuffle_rows=True, seed=1, num_epochs=2) as reader:
        starts = [g[0].ts for g in reader]
    assert sorted(starts) == sorted(_expected_starts(2, 3) * 2) and starts[:12] != sorted(starts[:12])
    with make_reader(url, schema_fields=ngram, seed=1, shuffle_rows=True, num_epochs=2) as reader:
        head = [next(reader)[0].ts for _ in range(5)]
        state = reader.state_dict()
    with make_reader(url, schema_fields=ngram, shuffle_rows=True, num_epochs=2, resume_from=state) as reader:
        assert head + [g[0].ts for g in reader] == starts


def test_ngram_errors(url):
    with pytest.raises(ValueError):
        NGram({}, 1, "ts")
    with pytest.raises(ValueError):
        NGram({0: ["ts"]}, None, "ts")
    with pytest.raises(ValueError, match="make_batch_reader"):
        make_batch_reader(url, schema_fields=NGram({0: ["ts"], 1: ["ts"]}, 1, "ts"))


def test_form_ngram_on_row_dicts():
    ngram = NGram({0: ["ts"], 2: ["value"]}, delta_threshold=5, timestamp_field="ts")
    rows = [{"ts": t, "value": t * 2} for t in (1, 2, 3, 20, 21, 22)]
    assert ngram.length == 3
    assert ngram.form_ngram(rows, TsSchema) == [{0: {"ts": 1}, 1: {}, 2: {"value": 6}},
                                                {0: {"ts": 20}, 1: {}, 2: {"value": 44}}]
    with pytest.raises(NotImplementedError, match="sorted"):
        ngram.form_ngram(list(reversed(rows)), TsSchema)
