"""A real standalone cluster (a master and one worker from pyspark's spark-class, on 127.0.0.1) running an application
submitted with `spark-submit --packages` (the jar resolved from target/m2, where `make jar` publishes it) and with
`--jars`: it writes and reads tensor and image columns through `format("petastorm")`, and the Python reader reads
what the cluster wrote."""
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from _cluster_job import PHOTO_SHAPE, ROWS, expected
from _spark_processes import LoggedProcess, free_port, ivy_conf, petastorm_coordinates, published_pom, pyspark_home, \
    spark_env
from _tensor_json import tensor_from_json
from PIL import Image

from petastorm import make_reader
from petastorm.spark import jar_path
from petastorm.spark.session import EXTENSIONS_CLASS

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 120
JOB_TIMEOUT_S = 400


class Cluster:
    """A running standalone cluster: its master URL, scratch folder and the environment its processes run in."""

    def __init__(self, url, workdir, env):
        self.url, self.workdir, self.env = url, workdir, env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and a worker (1 core, 1 GB), each in its own process group, stopped at the end."""
    workdir = tmp_path_factory.mktemp("cluster")
    for name in ("conf", "work", "local"):
        (workdir / name).mkdir()
    # An empty conf folder (no spark-defaults from elsewhere); work and scratch folders out of pyspark's.
    env = spark_env(SPARK_CONF_DIR=str(workdir / "conf"), SPARK_WORKER_DIR=str(workdir / "work"),
                    SPARK_LOCAL_DIRS=str(workdir / "local"), SPARK_DAEMON_MEMORY="512m")
    spark_class = str(pyspark_home() / "bin" / "spark-class")
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    processes = []
    try:
        master = LoggedProcess([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                "--port", str(port), "--webui-port", str(master_ui)], workdir / "master.log", env)
        processes.append(master)
        master.wait_for(rf"Starting Spark master at {url}", START_TIMEOUT_S)
        worker = LoggedProcess([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--cores", "1",
                                "--memory", "1g", "--host", "127.0.0.1", "--webui-port", str(worker_ui),
                                "--work-dir", str(workdir / "work")], workdir / "worker.log", env)
        processes.append(worker)
        master.wait_for(r"Registering worker 127\.0\.0\.1:\d+ with 1 cores", START_TIMEOUT_S)
        with urllib.request.urlopen(f"http://127.0.0.1:{master_ui}/json", timeout=30) as answer:
            state = json.load(answer)
        assert state["status"] == "ALIVE", state
        assert [(w["state"], w["cores"]) for w in state["workers"]] == [("ALIVE", 1)], state["workers"]
        yield Cluster(url, workdir, env)
    finally:
        for process in reversed(processes):
            process.stop()


def _images(folder):
    folder.mkdir()
    for i in range(ROWS):
        Image.fromarray(expected(i)["photo"]).save(folder / f"img-{i}.png")


def _submit(cluster, tmp_path, jar_args):
    """Runs tests/_cluster_job.py on the cluster (client mode) and returns its result and the dataset's folder."""
    images, dataset, result = tmp_path / "images", tmp_path / "dataset", tmp_path / "result.json"
    _images(images)
    command = [str(pyspark_home() / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
               *jar_args,
               "--conf", f"spark.sql.extensions={EXTENSIONS_CLASS}",
               "--conf", "spark.ui.enabled=false",
               "--conf", "spark.driver.host=127.0.0.1",
               "--conf", "spark.driver.bindAddress=127.0.0.1",
               "--conf", "spark.executor.memory=512m",
               "--conf", "spark.cores.max=1",
               "--driver-memory", "512m",
               str(Path(__file__).with_name("_cluster_job.py")), str(images), dataset.as_uri(), str(result)]
    job = LoggedProcess(command, tmp_path / "job.log", cluster.env)
    try:
        job.wait_for_exit(JOB_TIMEOUT_S)
    finally:
        job.stop()
    assert job.proc.returncode == 0, job.tail()
    return json.loads(result.read_text()), dataset


def _check(result, dataset, cluster):
    assert result["master"] == cluster.url and result["executors"] == 1, result
    assert [r["id"] for r in result["rows"]] == list(range(ROWS))
    for row in result["rows"]:
        for name, want in expected(row["id"]).items():
            got = tensor_from_json(row[name])
            assert got.dtype == want.dtype and got.shape == want.shape, (name, row["id"])
            np.testing.assert_array_equal(got, want, err_msg=f"{name} of row {row['id']}")
    assert result["metadata"]["photo"] == {"dtype": "uint8", "shape": list(PHOTO_SHAPE), "codec": "png"}
    assert result["metadata"]["drawn"]["codec"] == "png"
    # What the cluster wrote, read by the Python reader.
    with make_reader(dataset.as_uri(), shuffle_row_groups=False) as reader:
        rows = sorted(reader, key=lambda r: r.id)
    assert [int(r.id) for r in rows] == list(range(ROWS))
    for row in rows:
        for name, want in expected(int(row.id)).items():
            got = getattr(row, name)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{name} of row {row.id}")


def test_spark_submit_packages_on_a_standalone_cluster(cluster, tmp_path):
    coordinates = petastorm_coordinates()
    published_pom(coordinates)
    result, dataset = _submit(cluster, tmp_path, ["--packages", coordinates, *ivy_conf(tmp_path)])
    _check(result, dataset, cluster)
    artifact = coordinates.split(":")[1]
    assert any(artifact in Path(jar).name and str(tmp_path / "ivy") in jar
               for jar in result["jars"].split(",")), f"the jar did not come through Ivy: {result['jars']}"


def test_spark_submit_jars_on_a_standalone_cluster(cluster, tmp_path):
    result, dataset = _submit(cluster, tmp_path, ["--jars", jar_path()])
    _check(result, dataset, cluster)
