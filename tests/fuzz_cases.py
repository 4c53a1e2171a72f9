"""A seeded fuzzer of what a dataset hands the Python reader: mutated legacy metadata pickles, Unischema JSON keys,
NPY cells, compressed-ndarray (ZIP) cells and PNG/JPEG cells. Each case must end in a value or a clear error
(``PetastormMetadataError``, ``DecodeFieldError``, ``ValueError``) within ``CASE_LIMIT_S``, in a process whose peak
RSS stays under ``RSS_LIMIT_MB``; anything else (another exception type, a crash, a hang) is a finding.

    python tests/fuzz_cases.py --seconds 60 [--seed 1]     # what `make fuzz` runs (FUZZ_SECONDS)

The loop runs in a child process, so that a crash is reported (with the case that caused it) instead of taking
the caller down. Every finding is kept under ``tests/data/fuzz-regressions/`` (``<kind>-<sha>.bin``) and replayed
by ``tests/test_fuzz.py``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REGRESSIONS = os.path.join(HERE, "data", "fuzz-regressions")
CASE_LIMIT_S = 10.0
# The fuzzed decoders run under these limits (small, so that the loop is fast); the process must stay under
# twice them above what it holds before the loop.
FUZZ_LIMITS = {"max_cell_bytes": 32 * 2 ** 20, "max_image_pixels": 4 * 2 ** 20}
RSS_ALLOWANCE_MB = 2 * 32 + 2 * (4 * 3 * 2)  # two cells of 32 MiB, two uint16 RGB images of 4 Mpixels


def _seeds() -> dict[str, list[bytes]]:
    """Valid inputs of each kind, to mutate."""
    import numpy as np
    from pyspark.sql.types import IntegerType, StringType

    from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec, ScalarCodec
    from petastorm.etl.dataset_metadata import legacy_dumps
    from petastorm.unischema import Unischema, UnischemaField, unischema_to_json

    schema = Unischema("Fuzz", [
        UnischemaField("id", np.int32, (), ScalarCodec(IntegerType()), False),
        UnischemaField("name", np.str_, (), ScalarCodec(StringType()), True),
        UnischemaField("m", np.float32, (2, 3), NdarrayCodec(), False),
        UnischemaField("z", np.uint16, (None, 4), CompressedNdarrayCodec(), True),
        UnischemaField("img", np.uint8, (8, 8, 3), CompressedImageCodec("png"), False),
    ])
    m, z, img = schema.fields["m"], schema.fields["z"], schema.fields["img"]
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return {
        "pickle": [legacy_dumps(schema)],
        "json": [unischema_to_json(schema).encode("utf-8")],
        "npy": [bytes(NdarrayCodec().encode(m, np.arange(6, dtype=np.float32).reshape(2, 3)))],
        "npz": [bytes(CompressedNdarrayCodec().encode(z, np.ones((3, 4), np.uint16)))],
        "png": [bytes(CompressedImageCodec("png").encode(img, image))],
        "jpeg": [bytes(CompressedImageCodec("jpeg").encode(img, image))],
    }


def _checkers() -> dict[str, Callable[[bytes], Any]]:
    """What each kind of input is fed to."""
    import numpy as np

    from petastorm.codecs import CompressedImageCodec, CompressedNdarrayCodec, NdarrayCodec
    from petastorm.column_decode import decode_column
    from petastorm.etl.legacy_pickle import check_loaded_unischema, safe_loads
    from petastorm.unischema import UnischemaField, unischema_from_json

    m = UnischemaField("m", np.float32, (2, 3), NdarrayCodec(), False)
    z = UnischemaField("z", np.uint16, (None, 4), CompressedNdarrayCodec(), True)
    img = UnischemaField("img", np.uint8, (8, 8, 3), CompressedImageCodec("png"), False)
    jpg = UnischemaField("img", np.uint8, (8, 8, 3), CompressedImageCodec("jpeg"), False)

    def pickle_case(data: bytes) -> Any:
        value = safe_loads(data, "fuzzed schema")
        check_loaded_unischema(value, "fuzzed schema")  # what the reader does with a schema pickle
        repr(value), hash(repr(value))  # printing the schema must end too
        return value

    return {
        "pickle": pickle_case,
        "json": lambda data: unischema_from_json(data.decode("utf-8", "replace")),
        "npy": lambda data: (NdarrayCodec().decode(m, data), decode_column(m, [data, data])),
        "npz": lambda data: CompressedNdarrayCodec().decode(z, data),
        "png": lambda data: (img.codec.decode(img, data), decode_column(img, [data] * 3)),
        "jpeg": lambda data: (jpg.codec.decode(jpg, data), decode_column(jpg, [data] * 3)),
    }


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits: byte flips, big or small numbers written over bytes, cuts, repeats, inserts.
    Headers are where crafted sizes live, so edits prefer the first 64 bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(b"\0")
        where = rng.randrange(min(len(out), 64)) if rng.random() < 0.7 else rng.randrange(len(out))
        action = rng.randrange(6)
        if action == 0:
            out[where] ^= 1 << rng.randrange(8)
        elif action == 1:
            size = rng.choice((1, 2, 4, 8))
            value = rng.choice((0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 2 ** 63 - 1, rng.getrandbits(size * 8)))
            out[where:where + size] = (value & (2 ** (size * 8) - 1)).to_bytes(size, rng.choice(("little", "big")))
        elif action == 2:
            del out[where:where + rng.randint(1, 16)]
        elif action == 3:
            out = out[:where]
        elif action == 4:
            out[where:where] = out[where:where + rng.randint(1, 32)] * rng.randint(2, 64)
        else:
            out[where:where] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 8)))
    return bytes(out)


def run_case(kind: str, data: bytes, checkers: dict) -> str | None:
    """None when the case ends in a value or a clear error in time; else a description of the finding."""
    from petastorm.errors import DecodeFieldError, PetastormMetadataError

    started = time.monotonic()
    try:
        checkers[kind](data)
    except (PetastormMetadataError, DecodeFieldError, ValueError):
        pass
    except Exception as e:  # noqa: BLE001 - every other exception is a finding
        return f"{type(e).__name__}: {e}"[:300]
    elapsed = time.monotonic() - started
    return f"took {elapsed:.1f} s" if elapsed > CASE_LIMIT_S else None


def save_regression(kind: str, data: bytes) -> str:
    os.makedirs(REGRESSIONS, exist_ok=True)
    path = os.path.join(REGRESSIONS, f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}.bin")
    with open(path, "wb") as f:
        f.write(data)
    return path


def child(seconds: float, seed: int) -> None:
    """The fuzz loop; prints one JSON line per finding, then a summary line. The case under test is written to a
    file first, so that a crash leaves it behind."""
    from petastorm.codecs import DecodeLimits, using_decode_limits

    seeds, checkers = _seeds(), _checkers()
    for kind, cases in seeds.items():  # warm-up: every decoder loaded, so the RSS baseline includes them
        run_case(kind, cases[0], checkers)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rng = random.Random(seed)
    seen: set = set()
    kinds = sorted(seeds)
    tried = {kind: 0 for kind in kinds}
    pending = os.environ["PETASTORM_FUZZ_PENDING"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = kinds[sum(tried.values()) % len(kinds)]
        data = mutate(rng.choice(seeds[kind]), rng)
        with open(pending, "wb") as f:
            f.write(kind.encode() + b"\n" + data)
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with using_decode_limits(DecodeLimits(**FUZZ_LIMITS)):
            finding = run_case(kind, data, checkers)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before_mb
        if finding is None and grown > RSS_ALLOWANCE_MB:
            finding = f"peak RSS grew by {grown:.0f} MB"
        tried[kind] += 1
        if finding is not None and (kind, finding.split(":")[0]) not in seen:  # one case per kind of finding
            seen.add((kind, finding.split(":")[0]))
            print(json.dumps({"kind": kind, "finding": finding, "case": save_regression(kind, data)}), flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tried": tried, "peak_rss_mb": round(peak_mb), "baseline_rss_mb": round(baseline_mb)}),
          flush=True)


def fuzz(seconds: float, seed: int) -> dict:
    """Runs :func:`child` in a fresh process; returns the cases tried, the peak RSS and the findings (a crash of
    the child is a finding naming the saved case)."""
    pending = os.path.join(REGRESSIONS, ".pending")
    os.makedirs(REGRESSIONS, exist_ok=True)
    env = dict(os.environ, PETASTORM_FUZZ_PENDING=pending)
    code = f"import sys; sys.path.insert(0, {HERE!r}); import fuzz_cases; fuzz_cases.child({seconds}, {seed})"
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                timeout=seconds + 60)
        output, returncode = result.stdout, result.returncode
    except subprocess.TimeoutExpired as e:
        output, returncode = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "hang"
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    findings = [line for line in lines if "finding" in line]
    summary = next((line for line in lines if "tried" in line), {"tried": {}, "peak_rss_mb": None})
    if returncode != 0 and os.path.exists(pending):
        with open(pending, "rb") as f:
            kind, _, data = f.read().partition(b"\n")
        findings.append({"kind": kind.decode(), "finding": f"the process ended with {returncode}",
                         "case": save_regression(kind.decode(), data)})
    if os.path.exists(pending):
        os.unlink(pending)
    if summary["peak_rss_mb"] is not None and \
            summary["peak_rss_mb"] > summary["baseline_rss_mb"] + RSS_ALLOWANCE_MB:
        findings.append({"kind": "all", "finding": f"peak RSS {summary['peak_rss_mb']} MB, "
                                                   f"{summary['baseline_rss_mb']} MB before the loop"})
    return dict(summary, findings=findings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    result = fuzz(args.seconds, args.seed)
    print(f"seed {args.seed}: tried {sum(result['tried'].values())} cases {result['tried']}, "
          f"peak RSS {result['peak_rss_mb']} MB, {len(result['findings'])} finding(s)")
    for finding in result["findings"]:
        print(f"  {finding}")
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
    sys.exit(main())
