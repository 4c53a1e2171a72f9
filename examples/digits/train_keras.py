"""A Keras model on the digits dataset through make_petastorm_dataset (batch reader, batched fast path).

    python examples/digits/train_keras.py [--dataset-url file:///tmp/digits]
"""
import argparse
import math

from petastorm import make_batch_reader

TRAIN_ROWS = 1437
TEST_ROWS = 360


def make_model():
    import keras

    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(64, activation='relu'),
                              keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
    return model


def train_keras(dataset_url='file:///tmp/digits', epochs=8, batch_size=32, seed=0):
    """Trains and returns the test accuracy."""
    import keras
    import tensorflow as tf

    from petastorm.tf_utils import make_petastorm_dataset

    keras.utils.set_random_seed(seed)
    model = make_model()

    def to_xy(batch):
        return tf.cast(batch.image, tf.float32) / 255.0, batch.digit

    # num_epochs=None: the reader repeats; Keras stops each epoch after steps_per_epoch batches.
    with make_batch_reader(f'{dataset_url}/train', num_epochs=None, seed=seed, shuffle_rows=True,
                           schema_fields=['image', 'digit']) as reader:
        train = make_petastorm_dataset(reader, batch_size=batch_size).map(to_xy)
        model.fit(train, steps_per_epoch=math.ceil(TRAIN_ROWS / batch_size), epochs=epochs, verbose=0,
                  shuffle=False)  # the reader shuffles (shuffle_rows, a new row-group order per epoch)
    with make_batch_reader(f'{dataset_url}/test', num_epochs=1, schema_fields=['image', 'digit']) as reader:
        test = make_petastorm_dataset(reader, batch_size=256).map(to_xy)
        # steps: Keras 3 warns "ran out of data" at the end of any dataset whose length it does not know.
        _, accuracy = model.evaluate(test, steps=math.ceil(TEST_ROWS / 256), verbose=0)
    print(f'Keras (make_petastorm_dataset): test accuracy {accuracy:.3f}')
    return accuracy


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-url', default='file:///tmp/digits')
    train_keras(parser.parse_args().dataset_url)
