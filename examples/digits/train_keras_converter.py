"""The converter flow: a Spark DataFrame of digits (features as ML vectors) -> make_spark_converter -> Keras fit,
and the same converter as a torch DataLoader.

    python examples/digits/train_keras_converter.py [--cache-dir-url file:///tmp/petastorm-cache]
"""
import argparse
import math

from pyspark.sql import SparkSession

from petastorm.spark import SparkDatasetConverter, make_spark_converter


def digits_dataframes(spark):
    """(train, test) DataFrames with `features` (ml Vector of 64 doubles in 0..1) and `label`."""
    from pyspark.ml.linalg import Vectors
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = [(int(i), Vectors.dense((digits.data[i] / 16.0).tolist()), int(digits.target[i]))
            for i in range(len(digits.target))]
    df = spark.createDataFrame(rows, ['idx', 'features', 'label'])
    return df.filter('idx % 5 != 0'), df.filter('idx % 5 = 0')


def train_keras_converter(spark, cache_dir_url='file:///tmp/petastorm-cache', epochs=8, batch_size=32, seed=0):
    """Trains through the converter and returns the test accuracy."""
    import keras

    spark.conf.set(SparkDatasetConverter.PARENT_CACHE_DIR_URL_CONF, cache_dir_url)
    train_df, test_df = digits_dataframes(spark)
    train, test = make_spark_converter(train_df), make_spark_converter(test_df)  # features: float32 (N, 64)

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation='relu'), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
    # num_epochs=None repeats forever (and warns): Keras needs steps_per_epoch then.
    with train.make_tf_dataset(batch_size=batch_size, num_epochs=None, seed=seed, shuffle_rows=True,
                               shuffling_queue_capacity=512) as dataset:
        model.fit(dataset.map(lambda b: (b.features, b.label)), steps_per_epoch=math.ceil(len(train) / batch_size),
                  epochs=epochs, verbose=0, shuffle=False)  # the reader and shuffling_queue_capacity shuffle
    with test.make_tf_dataset(batch_size=256, num_epochs=1) as dataset:
        _, accuracy = model.evaluate(dataset.map(lambda b: (b.features, b.label)), verbose=0)

    # The same data for torch: batches of float32 tensors of shape (N, 64).
    with test.make_torch_dataloader(batch_size=100, num_epochs=1) as loader:
        first = next(iter(loader))
        print(f"torch batch: features {tuple(first['features'].shape)} {first['features'].dtype}")
    print(f'Keras (converter): test accuracy {accuracy:.3f}; {len(train)} train rows cached at {train.cache_dir_url}')
    train.delete()
    test.delete()
    return accuracy


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--cache-dir-url', default='file:///tmp/petastorm-cache')
    session = SparkSession.builder.master('local[2]').getOrCreate()
    train_keras_converter(session, parser.parse_args().cache_dir_url)
