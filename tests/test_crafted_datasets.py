"""Crafted or broken datasets give a clear error naming the file or key, for both readers: never a hang, a row from
outside the dataset, or a silently missing row."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _engine_helpers import write_engine_dataset

from petastorm import make_batch_reader, make_reader
from petastorm.errors import PetastormMetadataError
from petastorm.etl.dataset_metadata import ROW_GROUPS_PER_FILE_KEY, add_to_dataset_metadata
from petastorm.parquet_store import ParquetStore

FACTORIES = [make_reader, make_batch_reader]


@pytest.fixture
def dataset(tmp_path):
    return tmp_path / "ds", write_engine_dataset(tmp_path / "ds")


def _set_counts(url, counts):
    add_to_dataset_metadata(ParquetStore.open(url), {ROW_GROUPS_PER_FILE_KEY: json.dumps(counts).encode("utf-8")})


def _counts(url):
    store = ParquetStore.open(url)
    return json.loads(store.key_value_metadata()[ROW_GROUPS_PER_FILE_KEY].decode("utf-8"))


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("name", ["../other/secret.parquet", "/etc/passwd", "p=0/../../escape.parquet",
                                  "p=0/_hidden.parquet"])
def test_metadata_cannot_name_files_outside_the_dataset(dataset, tmp_path, factory, name):
    root, url = dataset
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "secret.parquet").write_bytes((root / "p=0" / "part-0.parquet").read_bytes())
    _set_counts(url, dict(_counts(url), **{name: 3}))
    with pytest.raises(PetastormMetadataError, match="not a data file path inside the dataset"):
        factory(url)


@pytest.mark.parametrize("factory", FACTORIES)
def test_negative_count_and_missing_listed_file(dataset, factory):
    root, url = dataset
    counts = _counts(url)
    _set_counts(url, dict(counts, **{"p=0/part-0.parquet": -1}))
    with pytest.raises(PetastormMetadataError, match=r"p=0/part-0.parquet the row-group count -1"):
        factory(url)
    _set_counts(url, counts)
    os.unlink(root / "p=1" / "part-2.parquet")
    with pytest.raises(PetastormMetadataError, match=r"part-2.parquet, which is not a data file of the dataset"):
        factory(url)


@pytest.mark.parametrize("factory", FACTORIES)
def test_dangling_link_and_folder_named_in_metadata(dataset, factory):
    root, url = dataset
    os.unlink(root / "p=1" / "part-3.parquet")
    os.symlink(root / "gone.parquet", root / "p=1" / "part-3.parquet")
    with pytest.raises(PetastormMetadataError, match="part-3.parquet.*dangling"):
        factory(url)
    os.unlink(root / "p=1" / "part-3.parquet")
    (root / "p=1" / "part-3.parquet").mkdir()
    with pytest.raises(PetastormMetadataError, match="part-3.parquet"):
        factory(url)


_FIFO_SCRIPT = """
import sys
from petastorm import make_batch_reader, make_reader
for factory in (make_reader, make_batch_reader):
    try:
        with factory(sys.argv[1]) as reader:
            list(reader)
        print("read without error")
    except OSError as e:
        print("refused:", e)
"""


def test_a_named_pipe_among_the_part_files_is_refused_not_opened(dataset):
    root, url = dataset
    os.mkfifo(root / "p=0" / "part-9.parquet")
    result = subprocess.run([sys.executable, "-c", _FIFO_SCRIPT, url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("refused:") and "part-9.parquet is not a regular file" in line
                                   for line in lines)


@pytest.mark.parametrize("stored, declared", [(np.float32, np.float64), (np.int64, np.int32), (np.uint8, np.int8)])
def test_npy_cells_of_another_dtype_than_the_field(tmp_path, stored, declared):
    from petastorm.codecs import NdarrayCodec
    from petastorm.column_decode import decode_column
    from petastorm.errors import DecodeFieldError
    from petastorm.unischema import UnischemaField

    field = UnischemaField("m", declared, (2,), NdarrayCodec(), False)
    cells = [NdarrayCodec().encode(UnischemaField("m", stored, (2,), NdarrayCodec(), False), np.ones(2, stored))
             for _ in range(3)]
    with pytest.raises(DecodeFieldError, match=f"Field 'm': the stored arrays are {np.dtype(stored)}"):
        decode_column(field, [bytes(c) for c in cells])  # one header: the dense path
    with pytest.raises(DecodeFieldError, match="the field's dtype is"):
        NdarrayCodec().decode(field, bytes(cells[0]))  # one cell
    big_endian = np.ones(2, np.dtype(declared).newbyteorder(">"))
    import io

    buffer = io.BytesIO()
    np.save(buffer, big_endian)
    assert decode_column(field, [buffer.getvalue()]).tolist() == [[1, 1]]  # byte order converts without loss


@pytest.mark.parametrize("factory", FACTORIES)
def test_an_unreadable_or_refused_stored_schema_is_an_error_not_an_inferred_schema(dataset, factory):
    import pickle

    from petastorm.etl.dataset_metadata import UNISCHEMA_JSON_KEY, UNISCHEMA_KEY

    root, url = dataset
    store = ParquetStore.open(url)
    add_to_dataset_metadata(store, {UNISCHEMA_JSON_KEY: b"{not json"})
    with pytest.raises(PetastormMetadataError, match=r"Invalid petastorm.unischema.json.*make_batch_reader\(\[<file"):
        factory(url)
    metadata = store.key_value_metadata()
    metadata.pop(UNISCHEMA_JSON_KEY)
    metadata[UNISCHEMA_KEY] = pickle.dumps(os.system)  # refused by the allow-list unpickler
    import pyarrow.parquet as pq

    schema = pq.read_schema(root / "_common_metadata").with_metadata(metadata)
    pq.write_metadata(schema, root / "_common_metadata")
    with pytest.raises(PetastormMetadataError, match="Could not load the pickled Unischema"):
        factory(url)
    files = sorted(str(p) for p in root.glob("p=*/part-*.parquet"))
    with factory([f"file://{f}" for f in files]) as reader:  # the explicit way to read without the stored schema
        assert reader.schema.fields["vec"].codec is None


def _one_column_dataset(root, field, cells):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from petastorm.etl.dataset_metadata import write_dataset_metadata
    from petastorm.unischema import Unischema

    root.mkdir(parents=True)
    pq.write_table(pa.table({field.name: pa.array(cells, pa.binary())}), root / "part-0.parquet")
    write_dataset_metadata(f"file://{root}", Unischema("Crafted", [field]))
    return f"file://{root}"


def _png_header_claiming(width, height):
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("pool", ["thread", "dummy"])
def test_an_image_header_claiming_a_huge_image_is_refused_before_decoding(tmp_path, factory, pool):
    from petastorm.codecs import CompressedImageCodec
    from petastorm.errors import DecodeFieldError
    from petastorm.unischema import UnischemaField

    field = UnischemaField("image", np.uint8, (32, 32, 3), CompressedImageCodec("png"), False)
    good = CompressedImageCodec("png").encode(field, np.zeros((32, 32, 3), np.uint8))
    url = _one_column_dataset(tmp_path / "ds", field, [bytes(good)] * 40 + [_png_header_claiming(30000, 30000)])
    with pytest.raises(DecodeFieldError, match=r"Field 'image'.*30000x30000.*over the limit of 89,478,485.*"
                                               r"max_image_pixels"):
        with factory(url, reader_pool_type=pool) as reader:
            list(reader)


@pytest.mark.parametrize("factory", FACTORIES)
def test_array_cells_over_the_decode_limit(tmp_path, factory):
    import io
    import struct

    from petastorm.codecs import CompressedNdarrayCodec, DecodeLimits, NdarrayCodec
    from petastorm.errors import DecodeFieldError
    from petastorm.unischema import UnischemaField

    zipped = UnischemaField("z", np.float32, (1024, 1024), CompressedNdarrayCodec(), False)
    url = _one_column_dataset(tmp_path / "zip", zipped,
                              [bytes(CompressedNdarrayCodec().encode(zipped, np.zeros((1024, 1024), np.float32)))])
    with factory(url) as reader:  # 4 MiB: within the default limit
        assert next(reader).z.shape[-2:] == (1024, 1024)
    with pytest.raises(DecodeFieldError, match=r"Field 'z'.*arr.npy member of 4,194,\d+, over the limit of 1,048,576"):
        with factory(url, decode_limits=DecodeLimits(max_cell_bytes=2 ** 20)) as reader:
            next(reader)
    # 128 bytes of NPY claiming 5 * 10**8 float32 elements
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (500_000_000,)})
    cell = header.getvalue() + struct.pack("<4f", 1, 2, 3, 4)
    claimed = UnischemaField("n", np.float32, (500_000_000,), NdarrayCodec(), False)
    url = _one_column_dataset(tmp_path / "npy", claimed, [cell])
    with pytest.raises(DecodeFieldError, match=r"Field 'n'.*an array of 2,000,000,000, over the limit of 536,870,912"):
        with factory(url) as reader:
            next(reader)
    with pytest.raises(ValueError, match="max_cell_bytes must be a positive int"):
        DecodeLimits(max_cell_bytes=0)


def test_the_opencv_column_path_keeps_the_pixel_limit(tmp_path):
    """A fixed-shape image column goes to the codec, which checks the limit, when its shape is over the limit."""
    import pyarrow as pa

    from petastorm.codecs import CompressedImageCodec, DecodeLimits, using_decode_limits
    from petastorm.errors import DecodeFieldError
    from petastorm.reader_impl.decoding import decode_column_parallel
    from petastorm.unischema import UnischemaField

    field = UnischemaField("image", np.uint8, (8, 8, 3), CompressedImageCodec("png"), False)
    cell = bytes(CompressedImageCodec("png").encode(field, np.zeros((8, 8, 3), np.uint8)))
    column = pa.array([cell] * 4, pa.binary())
    assert decode_column_parallel(field, column).shape == (4, 8, 8, 3)
    with using_decode_limits(DecodeLimits(max_image_pixels=63)):
        with pytest.raises(DecodeFieldError, match="8x8 image.*over the limit of 63"):
            decode_column_parallel(field, column)
