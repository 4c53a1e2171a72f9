"""The original Petastorm README's code samples, run as the README shows them, on a dataset made by the
README's own generator (``examples/hello_world``). Where TensorFlow 2 moved an API the sample used
(``tf.Session``, ``Dataset.make_one_shot_iterator``), the sample imports ``tensorflow.compat.v1 as tf`` and
turns eager mode off, which is what the TF 2 migration guide asks of any TF1 code; nothing else changes."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_hello_world import _load


@pytest.fixture(scope="module")
def hello_url(spark, tmp_path_factory):
    url = f"file://{tmp_path_factory.mktemp('readme') / 'hello_world_dataset'}"
    _load("generate_petastorm_dataset").generate_petastorm_dataset(url)
    return url


def _run(code: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_python_sample(hello_url, capsys):
    from petastorm import make_reader

    with make_reader(hello_url) as reader:
        for row in reader:
            print(row)
    out = capsys.readouterr().out
    assert sorted(int(part.split(")")[0]) for part in out.split("HelloWorldSchema(id=np.int32(")[1:]) == \
        list(range(10))


def test_tensorflow_samples(hello_url):
    out = _run(f"""
        import tensorflow.compat.v1 as tf
        tf.disable_eager_execution()
        from petastorm import make_reader
        from petastorm.tf_utils import tf_tensors, make_petastorm_dataset

        with make_reader('{hello_url}') as reader:
            row_tensors = tf_tensors(reader)
            with tf.Session() as session:
                for _ in range(3):
                    print('tensors', session.run(row_tensors).id)

        with make_reader('{hello_url}') as reader:
            dataset = make_petastorm_dataset(reader)
            iterator = tf.data.make_one_shot_iterator(dataset)
            tensor = iterator.get_next()
            with tf.Session() as sess:
                sample = sess.run(tensor)
                print('dataset', sample.id, sample.image1.shape)
        """)
    ids = [int(line.split()[1]) for line in out.splitlines() if line.startswith("tensors")]
    assert len(ids) == 3 and set(ids) <= set(range(10))
    assert "(128, 256, 3)" in [line for line in out.splitlines() if line.startswith("dataset")][0]


def test_pytorch_sample(hello_url):
    import torch

    from petastorm import TransformSpec, make_reader
    from petastorm.pytorch import DataLoader

    def _transform_row(row):
        return {"image1": row["image1"].astype(np.float32) / 255, "id": row["id"]}

    transform = TransformSpec(_transform_row, removed_fields=["array_4d"])
    torch.manual_seed(1)
    seen = []
    with DataLoader(make_reader(hello_url, num_epochs=2, transform_spec=transform, seed=1, shuffle_rows=True),
                    batch_size=4) as train_loader:
        for batch in train_loader:
            assert batch["image1"].dtype == torch.float32 and batch["image1"].shape[1:] == (128, 256, 3)
            seen += batch["id"].tolist()
    assert sorted(seen) == sorted(list(range(10)) * 2)


def test_batch_reader_sample(hello_url, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from petastorm import make_batch_reader

    pq.write_table(pa.table({"id": np.arange(20), "value": np.linspace(0, 1, 20)}), tmp_path / "plain.parquet")
    out = _run(f"""
        import tensorflow as tf
        from petastorm import make_batch_reader
        from petastorm.tf_utils import make_petastorm_dataset

        with make_batch_reader('file://{tmp_path}') as reader:
            dataset = make_petastorm_dataset(reader)
            for batch in dataset:
                print(batch.id.numpy().tolist())
        """)
    assert out.strip() == str(list(range(20)))
