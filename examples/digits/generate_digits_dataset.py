"""Writes scikit-learn's bundled digits (1,797 8x8 grey images) as two Petastorm datasets, train and test.

    python examples/digits/generate_digits_dataset.py [--output-url file:///tmp/digits]

Every 5th image goes to ``<output-url>/test``, the others to ``<output-url>/train``.
"""
import argparse

import numpy as np
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType

from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.unischema import Unischema, UnischemaField, dict_to_spark_row

DigitsSchema = Unischema('DigitsSchema', [
    UnischemaField('idx', np.int32, (), ScalarCodec(IntegerType()), False),
    UnischemaField('image', np.uint8, (8, 8), CompressedImageCodec('png'), False),
    UnischemaField('digit', np.int32, (), ScalarCodec(IntegerType()), False),
])


def load_digits_arrays():
    """(images as uint8 0..255 of shape (1797, 8, 8), labels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images * 255.0 / 16.0).round().astype(np.uint8), digits.target.astype(np.int32)


def generate_digits_dataset(spark, output_url='file:///tmp/digits'):
    images, labels = load_digits_arrays()
    for split, keep in (('train', lambda i: i % 5 != 0), ('test', lambda i: i % 5 == 0)):
        rows = [dict_to_spark_row(DigitsSchema, {'idx': i, 'image': images[i], 'digit': labels[i]})
                for i in range(len(images)) if keep(i)]
        url = f'{output_url}/{split}'
        # Small row groups (~64 KB) so that shuffling row groups mixes the data.
        with materialize_dataset(spark, url, DigitsSchema, row_group_size_mb=0.0625):
            spark.createDataFrame(rows, DigitsSchema.as_spark_schema()).repartition(4) \
                .write.mode('overwrite').parquet(url)
    return f'{output_url}/train', f'{output_url}/test'


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--output-url', default='file:///tmp/digits')
    session = SparkSession.builder.master('local[2]').getOrCreate()
    print(generate_digits_dataset(session, parser.parse_args().output_url))
