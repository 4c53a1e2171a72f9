"""A small CNN on the digits dataset with petastorm's DataLoader over make_reader.

    python examples/digits/train_torch.py [--dataset-url file:///tmp/digits]
"""
import argparse

import torch
from torch import nn

from petastorm import make_reader
from petastorm.pytorch import DataLoader


def make_model():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 2 * 2, 10))


def _inputs(batch):
    return batch['image'].float().unsqueeze(1) / 255.0, batch['digit'].long()


def train_torch(dataset_url='file:///tmp/digits', epochs=3, seed=0):
    """Trains and returns the test accuracy."""
    torch.manual_seed(seed)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    reader = make_reader(f'{dataset_url}/train', num_epochs=epochs, seed=seed, shuffle_rows=True,
                         schema_fields=['image', 'digit'])
    with DataLoader(reader, batch_size=32, shuffling_queue_capacity=256, seed=seed) as loader:
        model.train()
        for batch in loader:
            images, labels = _inputs(batch)
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
    model.eval()
    correct = total = 0
    with DataLoader(make_reader(f'{dataset_url}/test', schema_fields=['image', 'digit']), batch_size=256) as loader, \
            torch.no_grad():
        for batch in loader:
            images, labels = _inputs(batch)
            correct += int((model(images).argmax(1) == labels).sum())
            total += len(labels)
    accuracy = correct / total
    print(f'torch CNN: test accuracy {accuracy:.3f} on {total} images')
    return accuracy


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset-url', default='file:///tmp/digits')
    train_torch(parser.parse_args().dataset_url)
