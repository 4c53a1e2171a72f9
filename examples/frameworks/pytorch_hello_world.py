"""The README's PyTorch snippet on the hello-world dataset: petastorm's DataLoader over make_reader, and torch's
own DataLoader with 2 workers over PetastormIterableDataset.

    python examples/frameworks/pytorch_hello_world.py [--dataset-url file:///tmp/hello_world_dataset]
"""
import argparse

import torch

from petastorm import make_reader
from petastorm.pytorch import DataLoader, PetastormIterableDataset


def pytorch_hello_world(dataset_url='file:///tmp/hello_world_dataset'):
    with DataLoader(make_reader(dataset_url), batch_size=4) as loader:
        sample = next(iter(loader))
        print(f"ids {sample['id'].tolist()} image1 {tuple(sample['image1'].shape)}")

    # Each of the 2 workers reads its own row groups; together every row once per epoch.
    dataset = PetastormIterableDataset(dataset_url, batch_reader=False, schema_fields=['id', 'image1'])
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)
    ids = sorted(i for batch in loader for i in batch['id'].tolist())
    print(f'2 workers read ids {ids}')
    return ids


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-url', default='file:///tmp/hello_world_dataset')
    pytorch_hello_world(parser.parse_args().dataset_url)
