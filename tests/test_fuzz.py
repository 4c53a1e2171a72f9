"""The short fuzz run of ``make test`` (``make fuzz`` runs it for longer) and the inputs it has ever found to end
badly, replayed: each must now end in a value or a clear error, in time, without a large allocation."""
import collections
import glob
import io
import os
import pickle
import resource
import struct
import zipfile

import numpy as np
import pytest

import fuzz_cases

SECONDS = float(os.environ.get("PETASTORM_FUZZ_SECONDS", "6"))
# Rounds of the fuzz through Spark, each with new seeds (make fuzz raises it with FUZZ_SECONDS).
SPARK_ROUNDS = int(os.environ.get("PETASTORM_FUZZ_SPARK_ROUNDS", "1"))


def _seed(kind):
    return fuzz_cases._seeds()[kind][0]


def _crafted():
    """One input per kind of finding the fuzzer made before it was fixed (the .bin files hold later ones)."""
    from petastorm.codecs import CompressedImageCodec
    from petastorm.etl.dataset_metadata import legacy_dumps
    from petastorm.unischema import Unischema, UnischemaField

    npy = _seed("npy")
    header_end = npy.index(b"}") + 1
    cases = {
        "npy: header numpy's parser cannot tokenize":
            npy[:10] + b"{'descr': '<f4', 'fortran_order': False, 'shape': (2," + b" " * (header_end - 10 - 50)
            + npy[header_end:],
        "npy: descr numpy's dtype parser cannot read": npy.replace(b"'<f4'", b"',,,'"),
        "png: empty cell": b"",
        "jpeg: empty cell": b"",
    }
    png = bytearray(_seed("png"))
    png[33:37] = (0x7F000000).to_bytes(4, "big")  # the IDAT chunk claims 2 GB
    cases["png: chunk length claiming 2 GB"] = bytes(png)
    npz = bytearray(_seed("npz"))
    name_length, extra_length = struct.unpack("<HH", npz[26:30])
    npz[30 + name_length + extra_length] = 0xFF  # deflate block type 3: invalid
    cases["npz: corrupt deflate stream"] = bytes(npz)
    encrypted = bytearray(_seed("npz"))
    encrypted[6] |= 1  # the "encrypted" flag in the local header ...
    central = encrypted.rindex(b"PK\x01\x02")
    encrypted[central + 8] |= 1  # ... and in the central directory
    cases["npz: encrypted member"] = bytes(encrypted)
    stateless = object.__new__(CompressedImageCodec)
    cases["pickle: codec without its state"] = legacy_dumps(Unischema("S", [
        UnischemaField("img", np.uint8, (8, 8, 3), stateless, False)]))
    nameless = object.__new__(Unischema)
    nameless._fields = collections.OrderedDict()
    cases["pickle: Unischema without a name"] = pickle.dumps(nameless, protocol=2)
    cases["pickle: BYTEARRAY8 claiming 9.9 GB"] = b"\x80\x05\x96" + (9_891_546_240).to_bytes(8, "little") + b"xy."
    dag: list = []
    for _ in range(40):
        dag = [dag, dag]  # each level refers twice to the one below: a tree of 2**40 nodes in a small pickle
    cases["pickle: reference DAG"] = pickle.dumps(dag, protocol=2)
    return cases


CRAFTED = _crafted()


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_findings_end_clearly(name):
    from petastorm.codecs import DecodeLimits, using_decode_limits

    kind = name.split(":")[0]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with using_decode_limits(DecodeLimits(**fuzz_cases.FUZZ_LIMITS)):
        assert fuzz_cases.run_case(kind, CRAFTED[name], fuzz_cases._checkers()) is None
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before < fuzz_cases.RSS_ALLOWANCE_MB


def test_saved_findings_end_clearly():
    """Every finding a fuzz run saved (``tests/data/fuzz-regressions/<kind>-<sha>.bin``), replayed."""
    from petastorm.codecs import DecodeLimits, using_decode_limits

    checkers, failures = fuzz_cases._checkers(), []
    for path in sorted(glob.glob(os.path.join(fuzz_cases.REGRESSIONS, "*.bin"))):
        kind = os.path.basename(path).split("-")[0]
        with open(path, "rb") as f, using_decode_limits(DecodeLimits(**fuzz_cases.FUZZ_LIMITS)):
            finding = fuzz_cases.run_case(kind, f.read(), checkers)
        if finding is not None:
            failures.append((path, finding))
    assert failures == []


def test_short_fuzz_run_finds_nothing():
    result = fuzz_cases.fuzz(SECONDS, seed=20261201)
    assert result["findings"] == []
    assert set(result["tried"]) == {"pickle", "json", "npy", "npz", "png", "jpeg"}
    assert min(result["tried"].values()) >= 100


def test_mutations_are_seeded():
    import random

    data = io.BytesIO(b"0123456789" * 10).getvalue()
    assert fuzz_cases.mutate(data, random.Random(5)) == fuzz_cases.mutate(data, random.Random(5))
    assert len({fuzz_cases.mutate(data, random.Random(s)) for s in range(20)}) > 15
    assert zipfile.is_zipfile(io.BytesIO(_seed("npz")))


@pytest.mark.parametrize("state", [(3, "<", None, None, None, 2 ** 31 - 1, 8, 0),
                                   (3, "|", None, ("a", "b"),
                                    {"a": (np.dtype("f4"), 0), "b": (np.dtype("f4"), 2 ** 62)}, 8, 4, 16),
                                   (4, "<", None, None, None, -1, -1, 0, (None, (b"zz", 7, 1, 1)))])
def test_a_crafted_dtype_state_is_refused(state):
    """numpy trusts the state a pickle hands ``dtype.__setstate__`` (item size, fields, offsets): such dtypes read
    out of bounds when used, so only a dtype's plain state (any byte order) is loaded."""
    from petastorm.errors import PetastormMetadataError
    from petastorm.etl.legacy_pickle import safe_loads

    base = "M8" if state[0] == 4 else "f4"
    data = (b"\x80\x02cnumpy\ndtype\nX" + len(base).to_bytes(4, "little") + base.encode() + b"\x89\x88\x87R"
            + pickle.dumps(state, protocol=2)[2:-1] + b"b.")
    with pytest.raises(PetastormMetadataError, match="only plain dtypes"):
        safe_loads(data)
    for legit in ("<f4", ">i8", "M8[ns]", "m8[s]", "U3", "?"):
        assert safe_loads(pickle.dumps(np.dtype(legit), protocol=2)) == np.dtype(legit)


def _mutated(kind, count, seed):
    import random

    rng = random.Random(seed)
    return [fuzz_cases.mutate(_seed(kind), rng) for _ in range(count)]


@pytest.mark.slow
def test_fuzzed_images_through_spark_decode_image(spark):
    """The JVM's image decoders on mutated PNG and JPEG cells: every cell a tensor or a null (counted), in one job;
    no task failure, no OutOfMemoryError, and the session still answers."""
    from pyspark.sql.types import BinaryType, StructField, StructType

    from petastorm.spark.functions import decode_image, image_failure_count, tensor_shape

    for r in range(SPARK_ROUNDS):
        cells = _mutated("png", 600, 1 + 10 * r) + _mutated("jpeg", 600, 2 + 10 * r) + [_seed("png"), _seed("jpeg")]
        df = spark.createDataFrame([(bytearray(c),) for c in cells], StructType([StructField("b", BinaryType())]))
        before = image_failure_count(spark)
        rows = df.select(tensor_shape(decode_image("b")).alias("shape")).collect()
        decoded = [r.shape for r in rows if r.shape is not None]
        assert len(rows) == len(cells) and [8, 8, 3] in [list(s) for s in decoded]
        assert image_failure_count(spark) - before == len(rows) - len(decoded)
    print(f"spark fuzz: {SPARK_ROUNDS * 1202} image cells through decode_image")
    assert spark.range(3).count() == 3


@pytest.mark.slow
def test_fuzzed_array_cells_through_the_spark_source(spark, tmp_path):
    """The JVM's NPY and compressed-ndarray decoders (spark.read.format("petastorm")) on mutated cells, one dataset
    per cell: each read gives the value or fails with an error naming the field; the session stays usable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from petastorm.etl.dataset_metadata import write_dataset_metadata
    from petastorm.unischema import Unischema

    seeds_schema = _seed_schema()
    failures, refused = [], 0
    cases = [(kind, name, cell) for r in range(SPARK_ROUNDS) for kind, name in (("npy", "m"), ("npz", "z"))
             for cell in _mutated(kind, 15, 3 + 10 * r)]
    for i, (kind, name, cell) in enumerate(cases):
        root = tmp_path / f"{kind}-{i}"
        root.mkdir()
        pq.write_table(pa.table({name: pa.array([cell], pa.binary())}), root / "part-0.parquet")
        write_dataset_metadata(f"file://{root}", Unischema("F", [seeds_schema.fields[name]]))
        try:
            spark.read.format("petastorm").load(str(root)).collect()
        except Exception as e:  # noqa: BLE001 - the message is what is checked
            refused += 1
            if f"Field '{name}' in file:" not in str(e):
                failures.append((kind, i, str(e)[:300]))
    assert failures == [] and refused > 10 * SPARK_ROUNDS
    print(f"spark fuzz: {SPARK_ROUNDS * 30} array cells through spark.read.format('petastorm')")
    assert spark.range(3).count() == 3


@pytest.mark.slow
def test_fuzzed_legacy_schema_pickles_through_the_spark_source(spark, tmp_path):
    """The JVM's legacy-schema reader on mutated schema pickles (the only schema key of _common_metadata): each
    read gives rows or fails with an error naming the key; no JVM death, no hang (the test's timeout)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from petastorm.etl.dataset_metadata import UNISCHEMA_JSON_KEY, UNISCHEMA_KEY, write_dataset_metadata
    from petastorm.unischema import Unischema

    root = tmp_path / "ds"
    root.mkdir()
    pq.write_table(pa.table({"m": pa.array([_seed("npy")], pa.binary())}), root / "part-0.parquet")
    write_dataset_metadata(f"file://{root}", Unischema("F", [_seed_schema().fields["m"]]))
    base = pq.read_schema(root / "_common_metadata")
    metadata = {k: v for k, v in base.metadata.items() if k != UNISCHEMA_JSON_KEY}
    failures, outcomes = [], collections.Counter()
    for cell in [_seed("pickle")] + _mutated("pickle", 40 * SPARK_ROUNDS, 4):
        pq.write_metadata(base.with_metadata({**metadata, UNISCHEMA_KEY: cell}), root / "_common_metadata")
        try:
            outcomes["read", len(spark.read.format("petastorm").load(str(root)).collect())] += 1
        except Exception as e:  # noqa: BLE001 - the message is what is checked
            outcomes["refused"] += 1
            if UNISCHEMA_KEY.decode() not in str(e) and "pickle" not in str(e).lower():
                failures.append(str(e)[:300])
    print(f"spark fuzz: {sum(outcomes.values())} schema pickles through spark.read.format('petastorm'): "
          f"{dict(outcomes)}")
    assert failures == [] and outcomes["refused"] > 5 and outcomes["read", 1] >= 1  # the seed itself reads
    assert spark.range(3).count() == 3


def _seed_schema():
    """The schema of fuzz_cases' seed cells."""
    import numpy as np

    from petastorm.codecs import CompressedNdarrayCodec, NdarrayCodec
    from petastorm.unischema import Unischema, UnischemaField

    return Unischema("Fuzz", [UnischemaField("m", np.float32, (2, 3), NdarrayCodec(), False),
                              UnischemaField("z", np.uint16, (None, 4), CompressedNdarrayCodec(), True)])
