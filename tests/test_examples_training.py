"""The framework examples run: README snippets on the hello-world dataset, and digits training (torch CNN via
make_reader/DataLoader, Keras via make_petastorm_dataset and via the converter) reaching >= 0.90 test accuracy."""
import importlib.util
from pathlib import Path

import pytest
# torch optimizers import torch._dynamo, which imports triton; triton loaded after TensorFlow segfaults in one
# process. Collection runs before any test imports TensorFlow, so load it here first.
import torch._dynamo  # noqa: F401,E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(relative):
    path = EXAMPLES / relative
    spec = importlib.util.spec_from_file_location("example_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hello_world_url(spark, tmp_path_factory):
    url = (tmp_path_factory.mktemp("hello") / "hello_world").as_uri()
    _load("hello_world/generate_petastorm_dataset.py").generate_petastorm_dataset(url)
    return url


@pytest.fixture(scope="module")
def digits_url(spark, tmp_path_factory):
    url = (tmp_path_factory.mktemp("digits") / "digits").as_uri()
    train, test = _load("digits/generate_digits_dataset.py").generate_digits_dataset(spark, url)
    return url


def test_tf_hello_world(hello_world_url):
    sample = _load("frameworks/tf_hello_world.py").tf_hello_world(hello_world_url)
    assert sample.image1.shape == (128, 256, 3)


def test_pytorch_hello_world(hello_world_url):
    ids = _load("frameworks/pytorch_hello_world.py").pytorch_hello_world(hello_world_url)
    assert ids == list(range(10))


def test_digits_dataset(digits_url):
    from petastorm import make_batch_reader

    with make_batch_reader(f"{digits_url}/test") as reader:
        batches = list(reader)
    assert sum(len(b.digit) for b in batches) == 360 and batches[0].image.shape[1:] == (8, 8)


@pytest.mark.slow
def test_digits_torch_cnn(digits_url):
    assert _load("digits/train_torch.py").train_torch(digits_url) >= 0.90


@pytest.mark.slow
def test_digits_keras_make_petastorm_dataset(digits_url, capfd):
    """Trains as `make demo` does, without Keras' "ran out of data" or "shuffle=True was passed" warnings."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _load("digits/train_keras.py").train_keras(digits_url) >= 0.90
    said = " ".join(str(w.message) for w in caught) + capfd.readouterr().err
    assert "ran out of data" not in said and "shuffle=True" not in said


@pytest.mark.slow
def test_digits_keras_converter(spark, tmp_path):
    accuracy = _load("digits/train_keras_converter.py").train_keras_converter(spark, (tmp_path / "cache").as_uri())
    assert accuracy >= 0.90
    assert not list((tmp_path / "cache").iterdir())  # delete() removed both caches
