"""Reads the hello-world dataset back with make_reader and prints every row.

    python examples/hello_world/python_hello_world.py [--dataset-url file:///tmp/hello_world_dataset]
"""
import argparse

from petastorm import make_reader


def python_hello_world(dataset_url='file:///tmp/hello_world_dataset'):
    with make_reader(dataset_url) as reader:
        for row in reader:
            print(f'id={row.id} image1 {row.image1.shape} {row.image1.dtype} '
                  f'array_4d {row.array_4d.shape} {row.array_4d.dtype}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-url', default='file:///tmp/hello_world_dataset', help='the dataset to read')
    python_hello_world(parser.parse_args().dataset_url)
