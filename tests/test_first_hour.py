"""What a new user hits in the first hour, each a clear path now: a transform returning the wrong type, TF1 code
under eager TF2, missing extras, an unbounded dataset given to Keras, the jar added too late, dependency bounds,
import cost, a process pool inside a daemonic worker, ``Path.as_uri()`` URLs and progress in the CLIs."""
import multiprocessing
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from packaging.requirements import Requirement

from petastorm import TransformSpec, make_batch_reader, make_reader
from petastorm.etl.dataset_metadata import write_dataset_metadata
from petastorm.unischema import Unischema, UnischemaField

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Unischema("FirstHour", [UnischemaField("id", np.int64, (), None, False),
                                 UnischemaField("x", np.float32, (), None, False)])


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("first_hour") / "ds"
    root.mkdir()
    pq.write_table(pa.table({"id": np.arange(8, dtype=np.int64), "x": np.ones(8, np.float32)}),
                   root / "part-0.parquet", row_group_size=4)
    write_dataset_metadata(f"file://{root}", SCHEMA)
    return f"file://{root}"


def _python(code: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def test_a_transform_returning_a_tuple_is_named_with_what_to_return(url):
    def to_tuple(row):
        return row["x"], row["id"]

    with make_reader(url, reader_pool_type="dummy", transform_spec=TransformSpec(to_tuple)) as reader:
        with pytest.raises(TypeError, match=r"to_tuple must return a dict .* returned a tuple.*\{'image'"):
            next(reader)
    with make_batch_reader(url, reader_pool_type="dummy", transform_spec=TransformSpec(lambda df: df.values)) as r:
        with pytest.raises(TypeError, match="must return a pandas DataFrame"):
            next(r)


def test_tf_tensors_in_eager_mode_says_how_to_run_tf1_code(url):
    pytest.importorskip("tensorflow")
    from petastorm.tf_utils import tf_tensors

    with make_reader(url) as reader:
        with pytest.raises(RuntimeError, match="disable_eager_execution"):
            tf_tensors(reader)


def test_an_unbounded_reader_gives_an_infinite_tf_dataset(url):
    tf = pytest.importorskip("tensorflow")
    from petastorm.tf_utils import make_petastorm_dataset

    with make_reader(url, num_epochs=None) as reader:
        assert make_petastorm_dataset(reader).cardinality().numpy() == tf.data.INFINITE_CARDINALITY
    with make_batch_reader(url, num_epochs=None) as reader:
        dataset = make_petastorm_dataset(reader, batch_size=3)
        assert dataset.cardinality().numpy() == tf.data.INFINITE_CARDINALITY
        assert len(list(dataset.take(5))) == 5
    with make_reader(url, num_epochs=1) as reader:
        dataset = make_petastorm_dataset(reader)
        assert dataset.cardinality().numpy() == tf.data.UNKNOWN_CARDINALITY
        assert len(list(dataset)) == 8
    with pytest.warns(UserWarning, match="No row groups are left"):
        reader = make_reader(url, num_epochs=None, filters=[("id", ">", 1000)])
    with reader:  # nothing to read: an empty dataset, not an infinite one that fails when it ends
        assert len(list(make_petastorm_dataset(reader))) == 0


@pytest.mark.parametrize("blocked,code,extra", [
    ("tensorflow", "from petastorm.tf_utils import make_petastorm_dataset; make_petastorm_dataset(None)", "tf"),
    ("torch", "import petastorm.pytorch", "torch"),
])
def test_a_missing_extra_is_named(blocked, code, extra):
    proc = _python(f"import sys; sys.modules[{blocked!r}] = None\n{code}")
    assert proc.returncode != 0
    assert f"pip install 'petastorm[{extra}]'" in proc.stderr.strip().splitlines()[-1]


def test_import_petastorm_loads_no_engine_and_no_frameworks():
    proc = _python("""
        import sys
        import petastorm, petastorm.codecs, petastorm.unischema
        heavy = ['pandas', 'pyarrow.dataset', 'pyspark', 'tensorflow', 'torch', 'petastorm.reader',
                 'petastorm.reader_impl.pools', 'importlib.metadata']
        print([name for name in heavy if name in sys.modules])
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_declared_dependencies_match_the_tested_lock():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {}
    for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pinned[name.strip().lower()] = version.split(";")[0].strip()
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in ("tf", "torch") for r in project["optional-dependencies"][extra]]
    for requirement in requirements:
        version = pinned.get(requirement.name.lower()) or pinned.get(requirement.name.lower() + "-cpu")  # TF's CPU build
        assert version is not None, f"{requirement.name} is not in the lock"
        assert requirement.specifier.contains(version), f"the lock's {requirement.name}=={version} is outside " \
                                                        f"{requirement}"
    pandas = next(r for r in requirements if r.name == "pandas")
    assert not pandas.specifier.contains("3.0.0"), "pandas 3 is not tested"


def _process_reader_in_daemon(url, queue):
    try:
        make_reader(url, reader_pool_type="process")
        queue.put("no error")
    except ValueError as e:
        queue.put(str(e))


def test_a_process_pool_inside_a_daemonic_worker_says_what_to_use(url):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_process_reader_in_daemon, args=(url, queue), daemon=True)
    worker.start()
    message = queue.get(timeout=120)
    worker.join(timeout=60)
    assert "daemonic" in message and "reader_pool_type='thread'" in message


@pytest.mark.parametrize("folder", ["my set", "a#b", "what?", "100%"])
def test_path_as_uri_urls_reach_the_folder(tmp_path, folder):
    root = tmp_path / folder
    root.mkdir()
    pq.write_table(pa.table({"id": np.arange(3, dtype=np.int64), "x": np.ones(3, np.float32)}),
                   root / "part-0.parquet")
    write_dataset_metadata(root.as_uri(), SCHEMA)
    with make_reader(root.as_uri(), shuffle_row_groups=False) as reader:
        assert [int(row.id) for row in reader] == [0, 1, 2]
    cache = tmp_path / f"cache {folder}"
    with make_batch_reader(root.as_uri(), cache_type="local-disk", cache_location=cache.as_uri(),
                           cache_size_limit=10 ** 7, cache_row_size_estimate=16) as reader:
        assert [batch.id.tolist() for batch in reader] == [[0, 1, 2]]
    assert cache.is_dir()


def test_a_folder_named_as_spark_writes_an_undecoded_file_url_is_found(tmp_path):
    """Hadoop does not decode file URLs: ``save('file:///x/my%20set')`` writes a folder literally named so."""
    from petastorm.fs_utils import file_url_path

    literal = tmp_path / "my%20set"
    literal.mkdir()
    assert file_url_path(f"file://{literal}") == str(literal)
    assert file_url_path(f"file://{tmp_path}/other%20set") == f"{tmp_path}/other set"


@pytest.mark.slow
def test_configure_spark_on_a_running_context_gives_advice_that_works():
    proc = _python("""
        from pyspark.sql import SparkSession
        SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()
        from petastorm.spark import configure_spark
        try:
            configure_spark(SparkSession.builder)
        except RuntimeError as e:
            print(e)
        """)
    assert "new Python process" in proc.stdout and "--jars" in proc.stdout, proc.stderr[-2000:]
    assert "stop it first" not in proc.stdout


@pytest.mark.slow
def test_cli_sessions_show_sparks_progress_on_a_terminal():
    import pty

    code = ("from petastorm.spark.session import cli_session\n"
            "with cli_session('progress', master='local[1]', conf={'spark.ui.enabled': 'false'}) as spark:\n"
            "    print('progress=' + spark.conf.get('spark.ui.showConsoleProgress'))\n")
    output = bytearray()

    def read(fd):
        data = os.read(fd, 1024)
        output.extend(data)
        return data

    pty.spawn([sys.executable, "-c", code], read)
    assert b"progress=true" in bytes(output)
