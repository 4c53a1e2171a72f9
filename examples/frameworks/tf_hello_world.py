"""The README's TensorFlow snippet on the hello-world dataset: rows through make_petastorm_dataset (TF2), and
the same through tf_tensors in a TF1-style graph.

    python examples/frameworks/tf_hello_world.py [--dataset-url file:///tmp/hello_world_dataset]
"""
import argparse

from petastorm import make_reader


def tf_hello_world(dataset_url='file:///tmp/hello_world_dataset'):
    import tensorflow as tf

    from petastorm.tf_utils import make_petastorm_dataset, tf_tensors

    # TF2: a tf.data.Dataset of namedtuples with static shapes from the schema.
    with make_reader(dataset_url) as reader:
        dataset = make_petastorm_dataset(reader)
        for sample in dataset.take(2):
            print(f'id={int(sample.id)} image1 {sample.image1.shape} array_4d {sample.array_4d.shape}')

    # TF1 style: tensors in a graph, evaluated with a session.
    with tf.Graph().as_default(), make_reader(dataset_url) as reader:
        tensors = tf_tensors(reader)
        with tf.compat.v1.Session() as session:
            sample = session.run(tensors)
            print(f'id={sample.id} image1 {sample.image1.shape}')
    return sample


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-url', default='file:///tmp/hello_world_dataset')
    tf_hello_world(parser.parse_args().dataset_url)
