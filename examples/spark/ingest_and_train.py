"""A folder of images plus a `filename,label` CSV -> a Petastorm dataset in one command -> a Keras model.

The same as `petastorm ingest-images --labels labels.csv --images DIR --out URL --size 32x32`, from Python.

    python examples/spark/ingest_and_train.py [--images 600]
"""
import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from pyspark.sql import SparkSession

from petastorm import make_batch_reader
from petastorm.spark import configure_spark
from petastorm.spark.ingest import ingest_images


def make_image_folder(folder: Path, images: int, classes: int = 3) -> Path:
    """`images` 32x32 PNGs whose dominant colour channel is the label, and their labels.csv."""
    rng = np.random.default_rng(1)
    lines = ["filename,label"]
    for i in range(images):
        label = i % classes
        pixels = rng.integers(0, 100, (32, 32, 3), dtype=np.uint8)
        pixels[..., label] += 120
        Image.fromarray(pixels).save(folder / f"{i:05d}.png")
        lines.append(f"{i:05d}.png,{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder / "labels.csv"


def train(dataset_url: str, epochs: int = 10) -> float:
    """A small Keras model fed by make_petastorm_dataset; returns the accuracy on the training data."""
    import tensorflow as tf

    from petastorm.tf_utils import make_petastorm_dataset

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Rescaling(1 / 255.0),
                                 tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(3)])
    model.compile(tf.keras.optimizers.Adam(0.05), tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    def to_xy(batch):
        return batch.image, batch.label

    with make_batch_reader(dataset_url, schema_fields=["image", "label"], num_epochs=epochs, seed=0) as reader:
        model.fit(make_petastorm_dataset(reader, batch_size=32).map(to_xy), verbose=0, shuffle=False)
    with make_batch_reader(dataset_url, schema_fields=["image", "label"], num_epochs=1) as reader:
        return float(model.evaluate(make_petastorm_dataset(reader, batch_size=256).map(to_xy), verbose=0)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args()
    spark = configure_spark(SparkSession.builder.master("local[2]")).getOrCreate()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        labels = make_image_folder(folder, args.images)
        result = ingest_images(spark, str(labels), str(folder), f"file://{tmp}/dataset", size=(32, 32))
        print(f"ingested {result.rows} images")
        print(f"training accuracy: {train(f'file://{tmp}/dataset'):.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
