"""The jar inside the wheel, and the jar resolved by `spark-submit --packages` from a Maven repository."""
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from _spark_processes import ivy_conf

import petastorm
from petastorm.spark import jar_path

ROOT = Path(__file__).resolve().parents[1]
COORDINATES = f"org.petastorm:petastorm-spark_2.13:{petastorm.__version__}"


def test_version_is_defined_once():
    assert petastorm.__version__ == (ROOT / "VERSION").read_text().strip()
    assert Path(jar_path()).name == f"petastorm-spark_2.13-{petastorm.__version__}.jar"


@pytest.mark.slow
def test_spark_submit_packages_runs_a_job_that_reads_and_writes_the_format(tmp_path):
    repository = ROOT / "target" / "m2"
    pom = repository / "org/petastorm/petastorm-spark_2.13" / petastorm.__version__
    assert pom.is_dir(), f"{pom} is missing: `make jar` publishes the jar there"
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import numpy as np
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.getOrCreate()
        row = spark.sql("SELECT array_to_tensor(array(1, 2, 3, 4, 5, 6), array(2, 3), 'float32') AS t").first()
        assert row.t.dtype == np.float32 and row.t.shape == (2, 3), row.t
        out = spark.sql("SELECT tensor_shape(array_to_tensor(array(1L, 2L), array(2))) AS s").first().s
        print("RESULT", row.t.tolist(), out)
        (spark.range(5).selectExpr("CAST(id AS INT) AS id", "array_to_tensor(array(id, id), array(2)) AS t")
            .write.format("petastorm").save(sys.argv[1]))
        back = spark.read.format("petastorm").load(sys.argv[1]).orderBy("id").collect()
        print("DATASET", [r.t.tolist() for r in back])
        """
    ))
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[1]",
         "--packages", COORDINATES, *ivy_conf(tmp_path),  # target/m2 only, an Ivy cache under tmp_path
         "--conf", "spark.sql.extensions=org.petastorm.spark.PetastormExtensions",
         "--conf", "spark.ui.enabled=false",
         str(script), str(tmp_path / "dataset")],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "RESULT [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] [2]" in proc.stdout
    assert "DATASET [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]" in proc.stdout
    from petastorm import make_reader

    with make_reader(f"file://{tmp_path / 'dataset'}") as reader:
        assert sorted(int(r.id) for r in reader) == list(range(5))
    assert list((tmp_path / "ivy").rglob("petastorm-spark_2.13*.jar")), "the jar did not come through Ivy"


@pytest.mark.slow
def test_wheel_ships_the_jar_and_configure_spark_finds_it_in_a_clean_venv(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "VERSION", "README.md"):
        (source / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run(["cp", "-r", str(ROOT / "python"), str(source / "python")], check=True)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                    str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("petastorm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert f"petastorm/jars/petastorm-spark_2.13-{petastorm.__version__}.jar" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    uv = Path(sys.executable).parent / "uv"
    # Installs from the local cache only: no download at test time.
    subprocess.run([str(uv), "pip", "install", "--quiet", "--offline", "--python", str(venv / "bin" / "python"),
                    "-c", str(ROOT / "requirements" / "dev.lock"), str(wheel)], check=True, timeout=300)
    check = textwrap.dedent(
        """
        from pyspark.sql import SparkSession
        import petastorm.spark as ps
        builder = ps.configure_spark(SparkSession.builder.config("spark.jars", "/x/other.jar"))
        jars = builder._options["spark.jars"].split(",")
        assert jars[0] == "/x/other.jar" and jars[1] == ps.jar_path(), jars
        assert "site-packages" in ps.jar_path(), ps.jar_path()
        print("JAR", ps.jar_path())
        """
    )
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("JAR ") and Path(proc.stdout.split()[1]).is_file()
