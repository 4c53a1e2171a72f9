"""`petastorm ingest-images` and `ingest_images`: images + a label CSV into a Petastorm dataset via Spark."""
import os
import subprocess
import sys

import numpy as np
import pytest
from _images import write_labelled_pngs
from pyspark.sql import SparkSession

from petastorm import cli, make_reader
from petastorm.etl.dataset_metadata import get_schema_from_dataset_url
from petastorm.spark.ingest import ingest_images


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """30 PNGs (10 of them 40x40, the rest 32x32), one corrupt file, and a labels CSV with a header line."""
    folder = tmp_path_factory.mktemp("images")
    return folder, write_labelled_pngs(folder, [40] * 10 + [32] * 20, [i % 10 for i in range(30)], seed=5)


def test_ingest_keeps_pixels_labels_and_counts_bad_images(spark, image_folder, tmp_path):
    folder, pixels = image_folder
    url = f"file://{tmp_path / 'ingested'}"
    result = ingest_images(spark, str(folder / "labels.csv"), str(folder), url, codec="png")
    assert (result.rows, result.failed_images) == (30, 1)
    schema = get_schema_from_dataset_url(url)
    assert schema.label.numpy_dtype == np.int32 and schema.image.shape == (None, None, 3)
    with make_reader(url) as reader:
        rows = {r.filename: r for r in reader}
    assert sorted(rows) == sorted(pixels)
    for name, expected in pixels.items():
        np.testing.assert_array_equal(rows[name].image, expected)
        assert rows[name].label == int(name.split("_")[1].split(".")[0]) % 10


@pytest.mark.slow
def test_ingest_images_command_resizes(image_folder, tmp_path):
    folder, pixels = image_folder
    out = tmp_path / "resized"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.run(
        [sys.executable, "-m", "petastorm.cli", "ingest-images", "--labels", str(folder / "labels.csv"),
         "--images", str(folder), "--out", f"file://{out}", "--size", "32x32", "--master", "local[2]"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote 30 rows" in proc.stdout and "1 images could not be read" in proc.stdout
    assert get_schema_from_dataset_url(f"file://{out}").image.shape == (32, 32, 3)
    with make_reader(f"file://{out}") as reader:
        rows = {r.filename: r.image for r in reader}
    np.testing.assert_array_equal(rows["img_20.png"], pixels["img_20.png"])  # already 32x32: unchanged
    assert rows["img_0.png"].shape == (32, 32, 3)


def test_ingest_string_labels_keep_the_text_and_get_a_label_index(spark, image_folder, tmp_path):
    folder, pixels = image_folder
    labels = tmp_path / "animals.csv"
    animals = {f"img_{i}.png": ("cat", "dog", "bird")[i % 3] for i in range(12)}
    labels.write_text("filename,label\n" + "".join(f"{name},{label}\n" for name, label in animals.items()))
    url = f"file://{tmp_path / 'animals'}"
    assert ingest_images(spark, str(labels), str(folder), url).rows == 12
    schema = get_schema_from_dataset_url(url)
    assert schema.label_index.numpy_dtype == np.int32
    with make_reader(url) as reader:
        rows = {r.filename: r for r in reader}
    index = {"bird": 0, "cat": 1, "dog": 2}
    assert {name: (r.label, r.label_index) for name, r in rows.items()} == {
        name: (label, index[label]) for name, label in animals.items()}
    np.testing.assert_array_equal(rows["img_3.png"].image, pixels["img_3.png"])
    appended = ingest_images(spark, str(labels), str(folder), url, mode="Append")
    assert appended.rows == 12  # this ingest's rows, not the dataset's
    assert ingest_images(spark, str(labels), str(folder), url, mode="ignore").rows == 0  # an existing output stays
    with make_reader(url) as reader:
        assert sorted(r.filename for r in reader) == sorted(list(animals) * 2)
    empty = tmp_path / "empty"
    empty.mkdir()  # exists, holds no data file
    assert ingest_images(spark, str(labels), str(folder), empty.as_uri(), mode="append").rows == 12


def test_ingest_images_command_names_an_existing_output_and_the_mode_to_use(spark, image_folder, tmp_path, capsys):
    folder, _ = image_folder
    out = tmp_path / "exists"
    out.mkdir()
    url = f"file://{out}"
    assert SparkSession.getActiveSession() is not None  # the command runs on it (and leaves it running)
    code = cli.main(["ingest-images", "--labels", str(folder / "labels.csv"), "--images", str(folder), "--out", url])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (f"petastorm ingest-images: {url} already exists; pass --mode overwrite to replace it "
                   "(or --mode append to add to it)\n")
    with pytest.raises(FileExistsError, match=f"^ingest: output {url} already exists; use mode 'overwrite'") as raised:
        ingest_images(spark, str(folder / "labels.csv"), str(folder), url)
    assert raised.value.output == url
