"""The README's hello-world generator and reader run unchanged against this package."""
import importlib.util
from pathlib import Path

import numpy as np

from petastorm import make_reader
from petastorm.etl.dataset_metadata import get_schema_from_dataset_url

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "hello_world"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"hello_world_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_and_read_hello_world(spark, tmp_path, capsys):
    generator = _load("generate_petastorm_dataset")
    url = f"file://{tmp_path / 'hello_world'}"
    generator.generate_petastorm_dataset(url)

    assert get_schema_from_dataset_url(url) == generator.HelloWorldSchema
    with make_reader(url, shuffle_row_groups=False) as reader:
        rows = sorted(reader, key=lambda row: row.id)
    assert [row.id for row in rows] == list(range(10))
    for row in rows:
        assert row.image1.shape == (128, 256, 3) and row.image1.dtype == np.uint8
        assert row.array_4d.shape == (4, 128, 30, 3) and row.array_4d.dtype == np.uint8

    _load("python_hello_world").python_hello_world(url)
    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == sorted(f"id={i} image1 (128, 256, 3) uint8 array_4d (4, 128, 30, 3) uint8"
                                     for i in range(10))
