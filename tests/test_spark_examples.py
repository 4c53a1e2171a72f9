"""The Spark examples run on small data: many columns + image paths -> tensors -> torch; ingest -> Keras."""
import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "spark"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"spark_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_images_with_features_to_torch(spark, tmp_path):
    example = _load("images_with_features")
    folder = tmp_path / "photos"
    folder.mkdir()
    url = f"file://{tmp_path / 'dataset'}"
    example.write_dataset(example.make_inputs(spark, folder, images=120, features=60), url)
    df = spark.read.format("petastorm").load(url)
    assert len(df.columns) == 60 + 3 and df.schema["image"].metadata["petastorm"]["shape"] == [32, 32, 3]
    assert example.train(url, epochs=4) >= 0.9


@pytest.mark.slow
def test_ingest_and_train_keras(spark, tmp_path):
    import torch._dynamo  # noqa: F401  (load torch's triton before TensorFlow; see docs/adapters.md)

    example = _load("ingest_and_train")
    folder = tmp_path / "images"
    folder.mkdir()
    labels = example.make_image_folder(folder, images=150)
    from petastorm.spark.ingest import ingest_images

    result = ingest_images(spark, str(labels), str(folder), f"file://{tmp_path / 'dataset'}", size=(32, 32))
    assert result.rows == 150 and result.failed_images == 0
    assert example.train(f"file://{tmp_path / 'dataset'}") >= 0.9
