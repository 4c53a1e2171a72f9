"""A DataFrame with many feature columns and a column of image paths -> a (32, 32, 3) tensor column -> a Petastorm
dataset -> a torch model.

The images are read and decoded by `load_image` on the executors (no Python UDF, no flattened 3,072-d vectors),
kept as uint8 tensors with their shape, and written with `df.write.format("petastorm")`.

    python examples/spark/images_with_features.py [--images 400] [--features 100]
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from petastorm import make_batch_reader
from petastorm.spark import configure_spark
from petastorm.spark.functions import load_image


def make_inputs(spark: SparkSession, folder: Path, images: int, features: int):
    """Writes `images` PNGs of varying sizes (red-ish: label 1, blue-ish: label 0) and returns the DataFrame of
    `features` numeric columns, a label and the image path."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(images):
        label = i % 2
        height, width = rng.integers(28, 48, size=2)
        pixels = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        pixels[..., 0 if label else 2] += 150
        path = folder / f"photo_{i}.png"
        Image.fromarray(pixels).save(path)
        rows.append([i, label, str(path)] + rng.standard_normal(features).round(3).tolist())
    columns = ["id", "label", "path"] + [f"feature_{k}" for k in range(features)]
    return spark.createDataFrame(rows, columns)


def write_dataset(df, output_url: str) -> None:
    """The image path becomes a uint8 (32, 32, 3) tensor; every other column is kept as it is."""
    (df.withColumn("image", load_image("path", 32, 32)).drop("path")
       .write.format("petastorm").mode("overwrite").save(output_url))


def train(output_url: str, epochs: int = 3) -> float:
    """A small torch model on the image tensors; returns the accuracy on the training data."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32 * 3, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        with make_batch_reader(output_url, schema_fields=["image", "label"], num_epochs=1, seed=0) as reader:
            for batch in reader:
                x = torch.from_numpy(np.asarray(batch.image, dtype=np.float32) / 255.0)
                loss = torch.nn.functional.cross_entropy(model(x), torch.from_numpy(batch.label.astype(np.int64)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    correct = total = 0
    with make_batch_reader(output_url, schema_fields=["image", "label"], num_epochs=1) as reader, torch.no_grad():
        for batch in reader:
            predicted = model(torch.from_numpy(np.asarray(batch.image, dtype=np.float32) / 255.0)).argmax(1)
            correct += int((predicted.numpy() == batch.label).sum())
            total += len(batch.label)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--features", type=int, default=100)
    args = parser.parse_args()
    spark = configure_spark(SparkSession.builder.master("local[2]")).getOrCreate()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        url = f"file://{tmp}/dataset"
        write_dataset(make_inputs(spark, folder, args.images, args.features), url)
        print(f"training accuracy: {train(url):.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
