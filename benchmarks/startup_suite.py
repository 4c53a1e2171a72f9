"""Time to first row and first-epoch speed, each next to its same-run reference.

    .venv/bin/python benchmarks/startup_suite.py            # 5 repetitions
    .venv/bin/python benchmarks/startup_suite.py --quick    # 1 repetition, 100 files

Time to first row: from the ``make_reader`` / ``make_batch_reader`` call to the first row (warm process, files in
the page cache), against ``pyarrow.dataset`` discovery (``ds.dataset(..., partitioning='hive')``) plus its first
batch on the same files, for (a) one small file, (b) 1,000 files under 100 Hive partitions (plain Parquet), (c) the
same 1,000 files on a local S3 server (moto's server mode on 127.0.0.1; fsspec for us, pyarrow's S3 client for
pyarrow). Medians of the repetitions, and the ratio to the reference.

First epoch: ``make_batch_reader`` and ``make_reader`` over ``reader_suite``'s tensor dataset (20,000 rows, and
the same at 100,000 rows), 3 epochs in one reader (set-up timed apart); the first epoch's rows/s over the median of
epochs 2-3, per repetition, each in a fresh process (the first epoch of a process is the one that pays first-touch
costs). The reference, in the same run: pyarrow reading the same row groups (no decoding) on 1 and on 2 threads.
"""
from __future__ import annotations

import argparse
import json
import warnings
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))


def write_hive(root: str, partitions: int, files_per_partition: int) -> None:
    """``partitions`` x ``files_per_partition`` files of 100 rows (``id`` int64, ``x`` float32) under ``part=k``."""
    rng = np.random.default_rng(0)
    k = 0
    for p in range(partitions):
        folder = os.path.join(root, f"part={p}")
        os.makedirs(folder, exist_ok=True)
        for f in range(files_per_partition):
            table = pa.table({"id": np.arange(k * 100, (k + 1) * 100), "x": rng.random(100, dtype=np.float32)})
            pq.write_table(table, os.path.join(folder, f"f{f}.parquet"))
            k += 1


def _median_seconds(work: Callable[[], Any], repetitions: int) -> float:
    work()  # warm-up: imports, page cache
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def first_row(factory_name: str, url: str, **kwargs: Any) -> Callable[[], None]:
    def run() -> None:
        import petastorm

        with getattr(petastorm, factory_name)(url, **kwargs) as reader:
            next(reader)

    return run


def pyarrow_first_batch(path: str, filesystem: Any = None) -> Callable[[], None]:
    def run() -> None:
        import pyarrow.dataset as ds

        dataset = ds.dataset(path, format="parquet", partitioning="hive", filesystem=filesystem)
        next(iter(dataset.to_batches()))

    return run


def s3_copy(local_root: str) -> tuple[Any, dict, str]:
    """A moto S3 server on 127.0.0.1 holding a copy of ``local_root``; returns (server, storage_options, url)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    os.environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="bench")
    for folder, _, names in os.walk(local_root):
        for name in names:
            path = os.path.join(folder, name)
            client.upload_file(path, "bench", "hive/" + os.path.relpath(path, local_root))
    options = {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
               "client_kwargs": {"region_name": "us-east-1"}}
    return server, options, "s3://bench/hive"


def time_to_first_row(workdir: str, files_per_partition: int, repetitions: int, log: Callable) -> dict:
    small, hive = os.path.join(workdir, "small"), os.path.join(workdir, f"hive-{files_per_partition}")
    if not os.path.exists(small):
        write_hive(small, 1, 1)
    if not os.path.exists(hive):
        write_hive(hive, 100, files_per_partition)
    results: dict = {}

    def case(name: str, reference: Callable, ours: dict) -> None:
        ref = _median_seconds(reference, repetitions)
        results[name] = {"pyarrow_s": round(ref, 4)}
        for label, work in ours.items():
            seconds = _median_seconds(work, repetitions)
            results[name][label + "_s"] = round(seconds, 4)
            results[name][label + "_ratio"] = round(seconds / ref, 2)
            log(f"  {name:<10} {label:<18} {seconds * 1e3:8.1f} ms   pyarrow {ref * 1e3:7.1f} ms   "
                f"ratio {seconds / ref:5.2f}")

    for name, root in (("one file", small), ("1000 files" if files_per_partition == 10 else "hive", hive)):
        url = "file://" + root
        case(name, pyarrow_first_batch(root), {"make_batch_reader": first_row("make_batch_reader", url),
                                               "make_reader": first_row("make_reader", url)})
    server, options, url = s3_copy(hive)
    try:
        from pyarrow import fs as pafs

        s3fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", scheme="http", region="us-east-1",
                                 endpoint_override=options["endpoint_url"].split("//", 1)[1])
        case("s3", pyarrow_first_batch("bench/hive", s3fs),
             {"make_batch_reader": first_row("make_batch_reader", url, storage_options=options)})
    finally:
        server.stop()
    return results


_EPOCH_CHILD = """
import json, sys, time
sys.path.insert(0, {python!r})
import petastorm
factory = getattr(petastorm, {factory!r})
reader = factory({url!r}, num_epochs=3, shuffle_row_groups=False)
times, rows, per_epoch = [time.perf_counter()], 0, {rows}
for item in reader:
    rows += len(item[0]) if {batched} else 1
    if rows % per_epoch == 0:
        times.append(time.perf_counter())
reader.stop(); reader.join()
print(json.dumps([per_epoch / (b - a) for a, b in zip(times, times[1:])]))
"""

# The reference: pyarrow itself reading the same row groups (no decoding), on 1 thread and on 2 (our default
# workers on this machine), 3 epochs in a fresh process; its first epoch pays the same first-touch costs.
_PYARROW_CHILD = """
import glob, json, os, time
from concurrent.futures import ThreadPoolExecutor
import pyarrow.parquet as pq
paths = sorted(glob.glob(os.path.join({path!r}, "*.parquet")))
pieces = [(path, rg) for path in paths for rg in range(pq.read_metadata(path).num_row_groups)]
times = [time.perf_counter()]
with ThreadPoolExecutor({threads}) as pool:  # a ParquetFile per read: one is not safe to share between threads
    for _ in range(3):
        for table in pool.map(lambda piece: pq.ParquetFile(piece[0]).read_row_group(piece[1], use_threads=False),
                              pieces):
            del table
        times.append(time.perf_counter())
print(json.dumps([{rows} / (b - a) for a, b in zip(times, times[1:])]))
"""


def first_epoch(workdir: str, repetitions: int, quick: bool, log: Callable) -> dict:
    """Both readers over ``reader_suite``'s tensor dataset, and (full runs) over the same dataset at 100,000 rows:
    the loss of a first epoch is a fixed cost per process, so its share falls as an epoch gets longer."""
    import reader_suite

    base = dict(reader_suite.QUICK if quick else reader_suite.FULL)
    cases = [("tensor", base)] if quick else [("tensor", base), ("tensor-100k", dict(base, tensor_rows=100_000))]
    results = {}
    for name, sizes in cases:
        path = reader_suite.generate(os.path.join(workdir, "reader-suite" if name == "tensor" else name),
                                     sizes)["tensor"]
        children = {f"pyarrow, {n} thread{'s' if n > 1 else ''}": _PYARROW_CHILD.format(
            path=path, threads=n, rows=sizes["tensor_rows"]) for n in (1, 2)}
        for factory, batched in (("make_batch_reader", True), ("make_reader", False)):
            children[factory] = _EPOCH_CHILD.format(python=os.path.join(HERE, "..", "python"), factory=factory,
                                                    url="file://" + path, rows=sizes["tensor_rows"], batched=batched)
        for label, code in children.items():
            ratios, rates = [], []
            for _ in range(repetitions):
                epochs = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                                   text=True).stdout.strip().splitlines()[-1])
                rates.append([round(r) for r in epochs])
                ratios.append(epochs[0] / statistics.median(epochs[1:]))
            key = label if name == "tensor" else f"{label} {name}"
            results[key] = {"epoch_rows_per_s": rates, "first_over_later": round(statistics.median(ratios), 2)}
            log(f"  {key:<30} epochs (rows/s) {rates}   first / median(2-3): {statistics.median(ratios):.2f}")
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repetitions", type=int, default=None)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "petastorm-startup-bench"))
    args = parser.parse_args(argv)
    repetitions = args.repetitions or (1 if args.quick else 5)
    sys.path.insert(0, HERE)
    warnings.filterwarnings("ignore", message=".*is not a Petastorm dataset")  # plain Parquet on purpose
    log = print
    log("time to first row (median of %d):" % repetitions)
    results = {"time_to_first_row": time_to_first_row(args.workdir, 1 if args.quick else 10, repetitions, log)}
    log("first epoch (fresh process per repetition):")
    results["first_epoch"] = first_epoch(args.workdir, 3 if not args.quick else 1, args.quick, log)
    import reader_suite

    output = os.path.join(HERE, "results", f"startup_suite-{time.strftime('%Y%m%d-%H%M%S')}.json")
    reader_suite.write_json(results, output)
    log(f"results: {output}")
    return results


if __name__ == "__main__":
    main()
