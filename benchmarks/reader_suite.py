"""Reader benchmark suite: in one run, generate the datasets, measure the raw pyarrow limit and each reader path,
and print rows/s (median of the repetitions) and the ratio to the limit measured in the same run.

    .venv/bin/python benchmarks/reader_suite.py                 # full sizes, 3 repetitions
    .venv/bin/python benchmarks/reader_suite.py --quick         # tiny datasets, 1 repetition (a smoke test)

Datasets (written with pyarrow and ``write_dataset_metadata``; the same files Spark + ``materialize_dataset`` would
produce, minus Spark's own footer keys):

- ``tensor``: 20,000 rows of ``id`` (int64) and ``tensor`` float32 (3, 32, 32) with ``NdarrayCodec``,
  1,000 rows per row group;
- ``png``: 5,000 rows of ``id`` and ``image`` uint8 (64, 64, 3) with ``CompressedImageCodec('png')``,
  500 rows per row group;
- ``tabular``: 1,000,000 rows of 6 native scalar columns, 100,000 rows per row group.

Limits (each "rows/s", measured in this run on this machine):

- ``tensor_limit``: ``pyarrow.parquet`` reads each row group's ``id`` and ``tensor`` columns, then a zero-copy numpy
  view ``(N, 3, 32, 32)`` of the NPY cells is taken straight from the Arrow binary buffer (strides = cell length;
  the check that all cells have one length is included). Nothing is copied or decoded beyond Parquet;
- ``png_decode_1core``: the PNG cells (read with pyarrow) decoded one by one with ``cv2.imdecode`` plus the BGR->RGB
  swap on one thread, counted per CPU-second of that thread: what one core decodes (CPU time, not wall time, so
  that a loaded machine does not lower it);
- ``tabular_limit``: ``pyarrow.parquet`` reads each row group and every column is viewed as numpy (zero-copy).

Reader paths: ``make_batch_reader`` on ``tensor`` (decoded ``(N, 3, 32, 32)`` arrays) and on ``tabular``;
``make_reader`` rows on ``tensor``, ``png`` (thread pool) and ``tabular`` (first 200,000 rows). Each pass creates
one reader and reads ``--epochs`` (3) epochs with it, as a training loop builds its reader once and iterates it for
several epochs (the adapters suite does the same), timed (wall clock) from the reader's creation to its last item;
``--epochs 1`` gives the earlier runs' one-epoch passes, where the reader's start-up and its last row group weigh
more on small datasets. Each
repetition of a reader path runs right after a repetition of its limit, so both see the same machine load; the
ratio is the median of these paired ratios (5 repetitions). Every measurement repeats its pass over the dataset
for at least ``--min-seconds`` (1 s) so that it is not a few-millisecond sample. Next to the wall-clock ratio the
suite reports ``cpu_ratio``: rows per CPU-second of the whole process, reader over limit -- how much CPU each
row costs, which a loaded machine does not distort.

Peak RSS: a fresh process streams the tensor dataset for 3 epochs with ``make_batch_reader(results_queue_size=Q)``
where the queue budget Q x (decoded row-group bytes) is a quarter of the dataset; RSS (``/proc/self/status``) is
sampled after every batch and reported at the quarters of epoch 1 and at the end of each epoch, with the peak
(VmHWM), next to the dataset size, the budget and the peak of a plain pyarrow read-and-copy loop.

Results go to stdout and to a JSON file (``--output``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))  # run from a checkout without installing

FULL = {"tensor_rows": 20_000, "tensor_rg": 1_000, "png_rows": 5_000, "png_rg": 500, "tab_rows": 1_000_000,
        "tab_rg": 100_000, "tab_reader_rows": 200_000, "reps": 5}
QUICK = {"tensor_rows": 400, "tensor_rg": 100, "png_rows": 100, "png_rg": 50, "tab_rows": 20_000, "tab_rg": 5_000,
         "tab_reader_rows": 5_000, "reps": 1}
TARGETS = {"tensor_batch": ("tensor_limit", 0.8), "tensor_rows": ("tensor_limit", 0.35),
           "png_rows": ("png_decode_1core", 1.7), "png_batch": ("png_decode_1core", 1.7),
           "tabular_batch": ("tabular_limit", None), "tabular_rows": ("tabular_limit", None)}


# -- machine -----------------------------------------------------------------------------------------------------

def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def cores_available(seconds: float = 2.0) -> float:
    """How many cores this process gets right now: CPU time over wall time of one busy, GIL-free (OpenCV
    decoding) thread per CPU. 2.0 on an idle 2-core machine; less when other processes compete."""
    import threading

    import cv2

    cv2.setNumThreads(1)
    image = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[1]
    deadline = time.perf_counter() + seconds

    def spin() -> None:
        while time.perf_counter() < deadline:
            cv2.imdecode(image, cv2.IMREAD_UNCHANGED)

    c0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=spin) for _ in range(os.cpu_count() or 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round((time.process_time() - c0) / (time.perf_counter() - t0), 2)


def machine_info() -> dict:
    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "loadavg_at_start": _loadavg(), "cores_available_at_start": cores_available()}
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
        with open("/proc/meminfo") as f:
            info["mem_total_gib"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    import pyspark
    import cv2

    info["versions"] = {"numpy": np.__version__, "pyarrow": pa.__version__, "opencv": cv2.__version__,
                        "pyspark": pyspark.__version__}
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                            text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "python/petastorm"], cwd=os.path.join(HERE, ".."),
                               capture_output=True, text=True, check=True).stdout
        info["uncommitted_package_files"] = [line[3:] for line in dirty.splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


# -- datasets ----------------------------------------------------------------------------------------------------

def _schemas():
    from pyspark.sql.types import LongType

    from petastorm.codecs import CompressedImageCodec, NdarrayCodec, ScalarCodec
    from petastorm.unischema import Unischema, UnischemaField

    tensor = Unischema("TensorBench", [
        UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
        UnischemaField("tensor", np.float32, (3, 32, 32), NdarrayCodec(), False),
    ])
    png = Unischema("PngBench", [
        UnischemaField("id", np.int64, (), ScalarCodec(LongType()), False),
        UnischemaField("image", np.uint8, (64, 64, 3), CompressedImageCodec("png"), False),
    ])
    tabular = Unischema("TabularBench", [
        UnischemaField("id", np.int64, (), None, False),
        UnischemaField("i32", np.int32, (), None, False),
        UnischemaField("f32", np.float32, (), None, False),
        UnischemaField("f64", np.float64, (), None, False),
        UnischemaField("label", np.int8, (), None, False),
        UnischemaField("flag", np.bool_, (), None, False),
    ])
    return tensor, png, tabular


def _write(path: str, schema: Any, make_table: Callable[[int, int], pa.Table], rows: int, rows_per_group: int,
           groups_per_file: int) -> None:
    from petastorm.etl.dataset_metadata import write_dataset_metadata

    os.makedirs(path, exist_ok=True)
    start, part = 0, 0
    while start < rows:
        end = min(rows, start + rows_per_group * groups_per_file)
        table = make_table(start, end)
        # As the Spark writer stores them: encoded (codec) columns without dictionary encoding.
        plain = [f.name for f in table.schema if not pa.types.is_binary(f.type)]
        pq.write_table(table, os.path.join(path, f"part-{part:05d}.parquet"), row_group_size=rows_per_group,
                       compression="snappy", use_dictionary=plain)
        start, part = end, part + 1
    write_dataset_metadata(path, schema)


def generate(workdir: str, p: dict) -> dict:
    """Writes the three datasets (reused when a previous run wrote the same sizes); returns their paths."""
    tensor_schema, png_schema, tab_schema = _schemas()
    sizes = {k: p[k] for k in ("tensor_rows", "tensor_rg", "png_rows", "png_rg", "tab_rows", "tab_rg")}
    stamp = json.dumps(dict(sizes, layout=2), sort_keys=True)  # layout: bump when the files are written differently
    paths = {name: os.path.join(workdir, name) for name in ("tensor", "png", "tabular")}
    stamp_file = os.path.join(workdir, "datasets.json")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp and \
            all(os.path.exists(os.path.join(x, "_common_metadata")) for x in paths.values()):
        return paths
    import shutil

    for x in paths.values():
        shutil.rmtree(x, ignore_errors=True)
    rng = np.random.default_rng(0)
    tensor_field = tensor_schema.fields["tensor"]
    image_field = png_schema.fields["image"]

    def tensor_table(a: int, b: int) -> pa.Table:
        cells = [tensor_field.codec.encode(tensor_field, rng.standard_normal((3, 32, 32), dtype=np.float32))
                 for _ in range(a, b)]
        return pa.table({"id": pa.array(np.arange(a, b)), "tensor": pa.array(cells, pa.binary())})

    yy, xx = np.mgrid[0:64, 0:64]

    def png_table(a: int, b: int) -> pa.Table:
        cells = []
        for i in range(a, b):  # smooth gradients plus noise: compresses like a photo, not like pure noise
            base = np.stack([(xx * 4 + i) % 256, (yy * 4 + 2 * i) % 256, ((xx + yy) * 2 + 3 * i) % 256], axis=-1)
            noise = rng.integers(0, 24, size=(64, 64, 3))
            cells.append(image_field.codec.encode(image_field, ((base + noise) % 256).astype(np.uint8)))
        return pa.table({"id": pa.array(np.arange(a, b)), "image": pa.array(cells, pa.binary())})

    def tab_table(a: int, b: int) -> pa.Table:
        n = b - a
        return pa.table({"id": np.arange(a, b, dtype=np.int64),
                         "i32": rng.integers(-2 ** 31, 2 ** 31 - 1, n, dtype=np.int32),
                         "f32": rng.random(n, dtype=np.float32), "f64": rng.random(n),
                         "label": rng.integers(0, 10, n, dtype=np.int8), "flag": rng.random(n) < 0.5})

    _write(paths["tensor"], tensor_schema, tensor_table, p["tensor_rows"], p["tensor_rg"], 5)
    _write(paths["png"], png_schema, png_table, p["png_rows"], p["png_rg"], 5)
    _write(paths["tabular"], tab_schema, tab_table, p["tab_rows"], p["tab_rg"], 5)
    with open(stamp_file, "w") as f:
        f.write(stamp)
    return paths


def _dataset_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".parquet"))


def _row_groups(path: str):
    for name in sorted(f for f in os.listdir(path) if f.endswith(".parquet")):
        pf = pq.ParquetFile(os.path.join(path, name))
        for i in range(pf.num_row_groups):
            yield pf, i


# -- limits ------------------------------------------------------------------------------------------------------

def npy_view(column: pa.ChunkedArray, shape: tuple, dtype: np.dtype) -> list[np.ndarray]:
    """Zero-copy ``(N, *shape)`` views of fixed-length NPY cells, one per chunk."""
    views = []
    for chunk in column.chunks:
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, np.int32)[chunk.offset: chunk.offset + len(chunk) + 1]
        lengths = np.diff(offsets)
        cell = int(lengths[0])
        if not (lengths == cell).all():
            raise ValueError("cells of different lengths")
        first = memoryview(data_buf)[offsets[0]: offsets[0] + 10].tobytes()
        header = 10 + int.from_bytes(first[8:10], "little")
        itemsize = np.dtype(dtype).itemsize
        inner = [itemsize * int(np.prod(shape[i + 1:])) for i in range(len(shape))]
        views.append(np.ndarray((len(chunk),) + shape, dtype=dtype, buffer=data_buf,
                                offset=int(offsets[0]) + header, strides=(cell,) + tuple(inner)))
    return views


def tensor_limit(path: str) -> int:
    rows = 0
    for pf, i in _row_groups(path):
        table = pf.read_row_group(i, columns=["id", "tensor"])
        table.column("id").to_numpy()
        views = npy_view(table.column("tensor"), (3, 32, 32), np.float32)
        rows += sum(len(v) for v in views)
    return rows


def png_decode_1core(path: str, max_rows: int | None = None) -> int:
    import cv2

    cv2.setNumThreads(1)
    rows = 0
    for pf, i in _row_groups(path):
        cells = pf.read_row_group(i, columns=["image"]).column("image")
        for chunk in cells.chunks:
            for j in range(len(chunk)):
                buf = np.frombuffer(chunk[j].as_buffer(), np.uint8)
                image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
                cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                rows += 1
        if max_rows and rows >= max_rows:
            break
    return rows


def tabular_limit(path: str) -> int:
    rows = 0
    for pf, i in _row_groups(path):
        table = pf.read_row_group(i)
        for column in table.columns:
            for chunk in column.chunks:
                chunk.to_numpy(zero_copy_only=not pa.types.is_boolean(chunk.type))  # bools are bit-packed
        rows += table.num_rows
    return rows


# -- reader paths ------------------------------------------------------------------------------------------------

def _consume(reader: Any, batched: bool, max_rows: int | None) -> int:
    rows = 0
    for item in reader:
        rows += len(item[0]) if batched else 1
        if max_rows and rows >= max_rows:
            break
    return rows


def reader_path(factory_name: str, url: str, epochs: int, max_rows: int | None = None,
                **kwargs: Any) -> Callable[[], int]:
    def run() -> int:
        import petastorm

        factory = getattr(petastorm, factory_name)
        with factory(url, num_epochs=epochs, **kwargs) as reader:
            return _consume(reader, factory_name == "make_batch_reader", max_rows)

    return run


def _run_timed(work: Callable[[], int], min_seconds: float) -> tuple[int, float, float, float]:
    """Runs ``work`` until ``min_seconds`` have passed (at least once); returns rows, wall seconds, process CPU
    seconds and this thread's CPU seconds."""
    rows = 0
    c0, t0, th0 = time.process_time(), time.perf_counter(), time.thread_time()
    while True:
        rows += work()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return rows, elapsed, time.process_time() - c0, time.thread_time() - th0


def measure_once(name: str, work: Callable[[], int], min_seconds: float, log: Callable[[str], None],
                 per_cpu_second: bool = False) -> dict:
    load = _loadavg()
    rows, elapsed, cpu, thread_cpu = _run_timed(work, min_seconds)
    rate = rows / (thread_cpu if per_cpu_second and thread_cpu > 0 else elapsed)
    unit = "rows per CPU-second of one thread" if per_cpu_second else "rows/s"
    log(f"  {name}: {rows} rows in {elapsed:.3f} s wall, {thread_cpu:.3f} s thread CPU = {rate:,.0f} {unit} "
        f"(process CPU {cpu / elapsed:.2f} cores, load {load})")
    return {"rows": rows, "wall_s": round(elapsed, 4), "cpu_cores_used": round(cpu / elapsed, 2),
            "rate": round(rate, 1), "cpu_rate": round(rows / cpu, 1) if cpu > 0 else None, "loadavg": load}


def summarize(samples: list[dict]) -> dict:
    rates = [x["rate"] for x in samples]
    cpu_rates = [x["cpu_rate"] for x in samples if x["cpu_rate"]]
    return {"rows": samples[-1]["rows"], "rates": rates, "median": round(statistics.median(rates), 1),
            "cpu_rates": cpu_rates, "cpu_rate_median": round(statistics.median(cpu_rates), 1) if cpu_rates else None,
            "cpu_cores_used": [x["cpu_cores_used"] for x in samples], "loadavg": [x["loadavg"] for x in samples]}


# -- peak RSS ----------------------------------------------------------------------------------------------------

def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_child(url: str, queue_size: int, workers: int, epochs: int) -> None:
    """Runs in a fresh process: stream ``url`` for ``epochs`` epochs with make_batch_reader (or, with
    ``workers == 0``, with plain pyarrow reads copied into numpy arrays) and print RSS samples as JSON."""
    import petastorm  # imported in both modes, so that "before the reader" includes the same modules

    before_reader = _status_bytes("VmRSS")
    samples, rows = [], 0
    if workers == 0:
        for _ in range(epochs):
            for pf, i in _row_groups(url):
                table = pf.read_row_group(i, columns=["id", "tensor"])
                arrays = (table.column("id").to_numpy(), np.concatenate(npy_view(table.column("tensor"),
                                                                                 (3, 32, 32), np.float32)))
                rows += len(arrays[0])
                del table, arrays
                samples.append(_status_bytes("VmRSS"))
    else:
        with petastorm.make_batch_reader(url, num_epochs=epochs, results_queue_size=queue_size,
                                         workers_count=workers, shuffle_row_groups=False) as reader:
            for batch in reader:
                rows += len(batch[0])
                samples.append(_status_bytes("VmRSS"))
    print(json.dumps({"rss_before_reader": before_reader, "samples": samples, "peak_rss": _status_bytes("VmHWM"),
                      "rows": rows}))


def _rss_run(url: str, queue_size: int, workers: int, epochs: int) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", url, str(queue_size),
                          str(workers), str(epochs)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss(url: str, rows: int, rows_per_group: int, log: Callable[[str], None], epochs: int = 3) -> dict:
    decoded_row_group = rows_per_group * (8 + 3 * 32 * 32 * 4)
    dataset_decoded = rows * (8 + 3 * 32 * 32 * 4)
    groups = max(1, rows // rows_per_group)
    queue_size = max(1, groups // 4)  # the queue holds a quarter of the dataset: the dataset is 4x the budget
    workers = 2
    mib = 2 ** 20
    data = _rss_run(url, queue_size, workers, epochs)
    samples = data["samples"]
    per_epoch = max(1, len(samples) // epochs)
    quartiles = [samples[min(len(samples) - 1, int(q * per_epoch) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
    epoch_ends = [samples[min(len(samples) - 1, (e + 1) * per_epoch - 1)] for e in range(epochs)]
    raw = _rss_run(url, queue_size, 0, 1)
    result = {
        "results_queue_size": queue_size, "workers_count": workers, "epochs": epochs,
        "queue_budget_mib": round(queue_size * decoded_row_group / mib, 1),
        "dataset_decoded_mib": round(dataset_decoded / mib, 1),
        "rss_before_reader_mib": round(data["rss_before_reader"] / mib, 1),
        "rss_after_first_batch_mib": round(samples[0] / mib, 1) if samples else None,
        "rss_epoch1_at_25_50_75_100pct_mib": [round(x / mib, 1) for x in quartiles],
        "rss_at_end_of_each_epoch_mib": [round(x / mib, 1) for x in epoch_ends],
        "peak_rss_mib": round(data["peak_rss"] / mib, 1),
        "growth_after_epoch1_mib": round((max(samples[per_epoch:] or samples) - epoch_ends[0]) / mib, 1),
        "raw_pyarrow_copy_peak_rss_mib": round(raw["peak_rss"] / mib, 1),
        "rows": data["rows"],
    }
    log(f"  peak RSS streaming {result['dataset_decoded_mib']} MiB (decoded) x {epochs} epochs through a queue "
        f"budget of {result['queue_budget_mib']} MiB: before reader {result['rss_before_reader_mib']} MiB, epoch 1 "
        f"at 25/50/75/100% {result['rss_epoch1_at_25_50_75_100pct_mib']} MiB, at the end of each epoch "
        f"{result['rss_at_end_of_each_epoch_mib']} MiB, peak {result['peak_rss_mib']} MiB (plain pyarrow read + "
        f"copy, one pass: peak {result['raw_pyarrow_copy_peak_rss_mib']} MiB)")
    return result


# -- main --------------------------------------------------------------------------------------------------------

def run_suite(args: argparse.Namespace) -> dict:
    p = dict(QUICK if args.quick else FULL)
    if args.reps:
        p["reps"] = args.reps
    log = print
    workdir = args.workdir or os.path.join("/tmp", f"petastorm-bench-{'quick' if args.quick else 'full'}")
    os.makedirs(workdir, exist_ok=True)
    result: dict = {"suite": "reader_suite", "quick": args.quick, "started": datetime.datetime.now().isoformat(
        timespec="seconds"), "machine": machine_info(), "params": p}
    log(f"machine: {result['machine'].get('cpu_count')} CPUs ({result['machine'].get('cpu_model')}), load "
        f"{result['machine']['loadavg_at_start']}, cores this process can get now: "
        f"{result['machine']['cores_available_at_start']}")
    t0 = time.perf_counter()
    paths = generate(workdir, p)
    result["datasets"] = {name: {"path": path, "parquet_mib": round(_dataset_bytes(path) / 2 ** 20, 1)}
                          for name, path in paths.items()}
    log(f"datasets ready in {time.perf_counter() - t0:.1f} s: {result['datasets']}")
    reps = p["reps"]
    only = set(args.only.split(",")) if args.only else None

    def want(name: str) -> bool:
        return only is None or name in only or name.split("_")[0] in only

    # Each reader path is measured right after its limit, repetition by repetition, so that both see the same
    # machine load; the ratio is reported as the median of the paired ratios (and as the ratio of the medians).
    min_seconds = 0.0 if args.quick else args.min_seconds
    limit_work = {
        "tensor_limit": (lambda: tensor_limit(paths["tensor"]), False),
        "png_decode_1core": (lambda: png_decode_1core(paths["png"]), True),
        "tabular_limit": (lambda: tabular_limit(paths["tabular"]), False),
    }
    workers = {"workers_count": args.workers} if args.workers else {}
    epochs = 1 if args.quick else args.epochs
    paths_to_run = {
        "tensor_batch": reader_path("make_batch_reader", paths["tensor"], epochs, **workers),
        "tensor_rows": reader_path("make_reader", paths["tensor"], epochs, **workers),
        "png_rows": reader_path("make_reader", paths["png"], epochs, **workers),
        "png_batch": reader_path("make_batch_reader", paths["png"], epochs, **workers),
        "tabular_batch": reader_path("make_batch_reader", paths["tabular"], epochs, **workers),
        "tabular_rows": reader_path("make_reader", paths["tabular"], epochs, max_rows=p["tab_reader_rows"],
                                    **workers),
    }
    limit_samples: dict[str, list] = {name: [] for name in limit_work}
    readers = {}
    for name, work in paths_to_run.items():
        if not want(name):
            continue
        limit_name, target = TARGETS[name]
        limit_fn, per_cpu = limit_work[limit_name]
        log(f"{name} (paired with {limit_name}):")
        try:
            limit_fn()
            work()  # warm-up of both: page cache, imports, lazy initialisation
            pairs = []
            for _ in range(reps):
                lim = measure_once(limit_name, limit_fn, min_seconds, log, per_cpu_second=per_cpu)
                got = measure_once(name, work, min_seconds, log)
                limit_samples[limit_name].append(lim)
                pairs.append((got, lim))
        except Exception as e:  # noqa: BLE001 - report and go on with the other paths
            readers[name] = {"error": f"{type(e).__name__}: {e}"}
            log(f"  {name}: FAILED {type(e).__name__}: {e}")
            continue
        summary = summarize([got for got, _ in pairs])
        limit_median = statistics.median(lim["rate"] for _, lim in pairs)
        summary.update({"limit": limit_name, "limit_median": round(limit_median, 1),
                        "ratio": round(statistics.median(got["rate"] / lim["rate"] for got, lim in pairs), 3),
                        "ratio_of_medians": round(summary["median"] / limit_median, 3), "target": target})
        cpu_pairs = [got["cpu_rate"] / lim["cpu_rate"] for got, lim in pairs if got["cpu_rate"] and lim["cpu_rate"]]
        if cpu_pairs:  # rows per CPU-second of the whole process, reader over limit: efficiency, whatever the load
            summary["cpu_ratio"] = round(statistics.median(cpu_pairs), 3)
        readers[name] = summary
    result["limits"] = {name: summarize(samples) for name, samples in limit_samples.items() if samples}
    result["readers"] = readers
    result["reader_epochs_per_pass"] = epochs

    if not args.skip_rss:
        log("memory:")
        try:
            result["peak_rss"] = peak_rss(paths["tensor"], p["tensor_rows"], p["tensor_rg"], log)
        except Exception as e:  # noqa: BLE001
            result["peak_rss"] = {"error": f"{type(e).__name__}: {e}"}
            log(f"  peak RSS: FAILED {e}")
    result["machine"]["loadavg_at_end"] = _loadavg()
    result["machine"]["cores_available_at_end"] = cores_available()
    result["seconds"] = round(time.perf_counter() - t0, 1)

    log(f"\ncores this process could get: {result['machine']['cores_available_at_start']} at the start, "
        f"{result['machine']['cores_available_at_end']} at the end (2 busy GIL-free threads)")
    log("summary (median rows/s; ratio to the same-run limit):")
    for name, value in result["limits"].items():
        log(f"  {name:18s} {value['median']:>12,.0f}")
    for name, value in readers.items():
        if "error" in value:
            log(f"  {name:18s} error: {value['error']}")
            continue
        target = f" (target >= {value['target']})" if value["target"] else ""
        cpu_ratio = f"; per CPU-second {value['cpu_ratio']:.3f}" if value.get("cpu_ratio") else ""
        log(f"  {name:18s} {value['median']:>12,.0f}  ratio {value['ratio']:.3f} of {value['limit']}{target}"
            f"{cpu_ratio}")
    return result


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny datasets and one repetition (smoke test)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement (default 5; quick 1)")
    parser.add_argument("--workdir", default=None, help="where datasets are written (reused across runs)")
    parser.add_argument("--output", default=None, help="JSON result file (default benchmarks/results/"
                                                       "reader_suite-<date>.json; quick: <workdir>/result.json)")
    parser.add_argument("--workers", type=int, default=None, help="workers_count for the readers (default: "
                                                                   "the reader's default)")
    parser.add_argument("--only", default=None, help="comma-separated reader paths (or prefixes: tensor, png, "
                                                     "tabular) to measure")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="a measurement repeats its pass over the "
                                                                         "dataset for at least this long")
    parser.add_argument("--epochs", type=int, default=3, help="epochs each reader reads in one timed pass "
                                                                "(default 3; quick 1)")
    parser.add_argument("--skip-rss", action="store_true", help="skip the peak-RSS measurement")
    parser.add_argument("--rss-child", nargs=4, metavar=("URL", "QUEUE", "WORKERS", "EPOCHS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child[0], int(args.rss_child[1]), int(args.rss_child[2]), int(args.rss_child[3]))
        return None
    result = run_suite(args)
    output = args.output
    if output is None:
        if args.quick:
            output = os.path.join(args.workdir or "/tmp/petastorm-bench-quick", "result.json")
        else:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            output = os.path.join(HERE, "results", f"reader_suite-{stamp}.json")
    write_json(result, output)
    print(f"\nwrote {output}")
    return result


def write_json(result: dict, output: str) -> None:
    """Writes a suite's results to ``output`` (its folder created if missing)."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
