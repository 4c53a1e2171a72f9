"""Smoke tests of the benchmark suite (tiny sizes) and of the petastorm-throughput command."""
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql.types import LongType

from petastorm.benchmark import throughput
from petastorm.codecs import NdarrayCodec, ScalarCodec
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.unischema import Unischema, UnischemaField

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUITE = os.path.join(ROOT, "benchmarks", "reader_suite.py")

TinySchema = Unischema("TinySchema", [
    UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
    UnischemaField("vec", np.float32, (2, 3), NdarrayCodec(), False),
])


@pytest.fixture(scope="module")
def tiny_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "tiny"
    root.mkdir()
    field = TinySchema.fields["vec"]
    ids = np.arange(40)
    pq.write_table(pa.table({"id": ids, "vec": [field.codec.encode(field, np.full((2, 3), i, np.float32))
                                                for i in ids]}), root / "part-0.parquet", row_group_size=10)
    write_dataset_metadata(str(root), TinySchema)
    return f"file://{root}"


@pytest.mark.slow
def test_reader_suite_quick(tmp_path):
    output = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, SUITE, "--quick", "--workdir", str(tmp_path / "work"), "--output",
                           str(output)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ratio" in proc.stdout and "summary" in proc.stdout
    result = json.loads(output.read_text())
    assert set(result["limits"]) == {"tensor_limit", "png_decode_1core", "tabular_limit"}
    assert set(result["readers"]) == {"tensor_batch", "tensor_rows", "png_rows", "png_batch", "tabular_batch",
                                      "tabular_rows"}
    for name, value in result["readers"].items():
        assert "error" not in value, (name, value)
        assert value["median"] > 0 and value["ratio"] > 0
    assert result["readers"]["tensor_batch"]["rows"] == result["params"]["tensor_rows"]
    rss = result["peak_rss"]
    assert "error" not in rss and rss["peak_rss_mib"] >= rss["rss_before_reader_mib"] > 0
    assert result["machine"]["cpu_count"] >= 1 and result["machine"]["loadavg_at_start"]


def test_npy_view_is_zero_copy_and_exact():
    sys.path.insert(0, os.path.dirname(SUITE))
    try:
        import reader_suite
    finally:
        sys.path.pop(0)
    field = UnischemaField("t", np.float32, (3, 4), NdarrayCodec(), False)
    values = np.random.default_rng(0).standard_normal((7, 3, 4)).astype(np.float32)
    column = pa.chunked_array([pa.array([field.codec.encode(field, v) for v in values[:5]], pa.binary()),
                               pa.array([field.codec.encode(field, v) for v in values[5:]], pa.binary())])
    sliced = pa.chunked_array([column.chunk(0).slice(1, 3)])
    views = reader_suite.npy_view(column, (3, 4), np.float32)
    np.testing.assert_array_equal(np.concatenate(views), values)
    assert not views[0].flags.owndata
    np.testing.assert_array_equal(reader_suite.npy_view(sliced, (3, 4), np.float32)[0], values[1:4])


def test_throughput_cli_in_process(tiny_url, capsys):
    result = throughput._main([tiny_url, "--field-regex", "i.", "vec", "-w", "1", "-p", "thread", "-m", "3",
                               "-n", "25", "-d", "python", "--no-spawn"])
    assert result.samples_per_second > 0 and result.memory_info.rss > 0 and result.cpu >= 0
    assert "Average sample read rate:" in capsys.readouterr().out


def test_throughput_batch_reader_counts_rows(tiny_url):
    result = throughput.reader_throughput(tiny_url, warmup_cycles_count=1, measure_cycles_count=4,
                                          pool_type="none", batch_reader=True, spawn_new_process=False)
    assert result.time_mean > 0 and result.samples_per_second > 4 / result.time_mean / 4  # rows, not batches


def test_throughput_command_line(tiny_url):
    proc = subprocess.run([sys.executable, "-m", "petastorm.benchmark.throughput", tiny_url, "-w", "2", "-m", "2",
                           "-n", "20"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "samples/sec" in proc.stdout and "MB (rss)" in proc.stdout


def test_throughput_arguments():
    args = throughput._parse_args(["file:///x", "-q", "100"])
    assert (args.workers_count, args.pool_type, args.warmup_cycles, args.measure_cycles) == \
        (3, throughput.WorkerPoolType.THREAD, 200, 1000)
    assert args.read_method == "python" and args.min_after_dequeue == 80
    with pytest.raises(SystemExit):
        throughput._parse_args(["file:///x", "-d", "carrier-pigeon"])
    with pytest.raises(SystemExit):
        throughput._parse_args(["file:///x", "-p", "fiber"])
    assert throughput.WorkerPoolType("none").reader_pool_type == "dummy"


def test_read_method_hook(tiny_url):
    calls = []

    def counting(reader, warmup, measure, queue, min_after):
        calls.append((warmup, measure, queue, min_after))
        return throughput._python_method(reader, warmup, measure, queue, min_after)

    throughput.register_read_method("counting", counting)
    try:
        result = throughput.reader_throughput(tiny_url, warmup_cycles_count=1, measure_cycles_count=3,
                                              read_method="counting", shuffling_queue_size=7, min_after_dequeue=5,
                                              spawn_new_process=False)
    finally:
        del throughput.READ_METHODS["counting"]
    assert calls == [(1, 3, 7, 5)] and result.samples_per_second > 0
    with pytest.raises(ValueError, match="Unknown read method"):
        throughput.reader_throughput(tiny_url, read_method="nope", spawn_new_process=False)


@pytest.mark.slow
def test_throughput_tf_read_method(tiny_url):
    pytest.importorskip("tensorflow")
    for batch_reader in (False, True):
        result = throughput.reader_throughput(tiny_url, warmup_cycles_count=2, measure_cycles_count=5,
                                              read_method="tf", batch_reader=batch_reader, spawn_new_process=False)
        assert result.samples_per_second > 0
