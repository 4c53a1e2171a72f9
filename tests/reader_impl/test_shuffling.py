"""petastorm.reader_impl.shuffling: every engine order as a function of (seed, epoch, purpose, keys)."""
import numpy as np
import pytest

from petastorm.reader_impl.shuffling import (FILE_ROW_GROUPS, FILES, PURPOSES, ROW_GROUPS, ROWS, UNITS,
                                             legacy_shard_permutation, order_rng, permutation)

# One valid key tuple per purpose.
KEYS = {ROW_GROUPS: (), ROWS: (3, 1, 10), UNITS: (4,), FILES: (), FILE_ROW_GROUPS: (6,)}


@pytest.mark.parametrize("purpose,keys,sequence", [
    (ROW_GROUPS, (), [12, 2]),
    (ROWS, (3, 1, 10), [12, 2, 3, 1, 10, 7]),
    (UNITS, (4,), [12, 2, 4, 11]),
    (FILES, (), [12, 2, 13]),
    (FILE_ROW_GROUPS, (6,), [12, 2, 6, 17]),
])
def test_each_purpose_keeps_the_seed_sequence_of_earlier_versions(purpose, keys, sequence):
    # Saved iteration states and pinned orders rely on these sequences staying as they are.
    expected = np.random.default_rng(sequence).permutation(40)
    np.testing.assert_array_equal(permutation(40, 12, 2, purpose, *keys), expected)
    assert order_rng(12, 2, purpose, *keys).integers(0, 2 ** 62) == np.random.default_rng(sequence).integers(0, 2 ** 62)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_same_arguments_give_the_same_order(purpose):
    first = permutation(100, 5, 3, purpose, *KEYS[purpose])
    again = permutation(100, 5, 3, purpose, *KEYS[purpose])
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("purpose", PURPOSES)
def test_seed_and_epoch_each_change_the_order(purpose):
    keys = KEYS[purpose]
    orders = {tuple(permutation(100, seed, epoch, purpose, *keys).tolist())
              for seed in (0, 1, 2**61 + 5) for epoch in range(4)}
    assert len(orders) == 12


def test_purposes_are_independent():
    orders = [tuple(permutation(100, 9, 0, purpose, *(0,) * len(KEYS[purpose])).tolist()) for purpose in PURPOSES]
    assert len(set(orders)) == len(PURPOSES)


def test_every_key_of_rows_changes_the_order():
    base = permutation(100, 1, 0, ROWS, 2, 0, 0).tolist()
    for keys in [(3, 0, 0), (2, 1, 0), (2, 0, 5)]:
        assert permutation(100, 1, 0, ROWS, *keys).tolist() != base


@pytest.mark.parametrize("count", [0, 1, 2, 17, 1000])
@pytest.mark.parametrize("purpose", PURPOSES)
def test_permutation_is_a_permutation(count, purpose):
    order = permutation(count, 7, 1, purpose, *KEYS[purpose])
    assert order.shape == (count,) and order.dtype.kind == "i"
    assert sorted(order.tolist()) == list(range(count))


def test_numpy_integer_arguments_give_the_same_order_as_ints():
    np.testing.assert_array_equal(permutation(30, np.int64(8), np.int32(2), ROWS, np.int64(1), 0, np.int64(5)),
                                  permutation(30, 8, 2, ROWS, 1, 0, 5))


def test_unknown_purpose_names_the_known_ones():
    with pytest.raises(ValueError, match="'shards'.*'row-groups', 'rows', 'units'"):
        order_rng(0, 0, "shards")


@pytest.mark.parametrize("purpose,keys", [(ROW_GROUPS, (1,)), (ROWS, (1, 2)), (UNITS, ()), (UNITS, (1, 2))])
def test_wrong_number_of_keys(purpose, keys):
    expected = len(KEYS[purpose])
    with pytest.raises(ValueError, match=f"{purpose!r} takes {expected} keys, got {len(keys)}"):
        permutation(5, 0, 0, purpose, *keys)


def test_legacy_shard_permutation_is_the_original_random_state_draw():
    # numpy's RandomState stream is frozen, so these are the original Petastorm's shard assignments.
    assert legacy_shard_permutation(8, 3).tolist() == [5, 7, 4, 6, 3, 1, 0, 2]
    assert legacy_shard_permutation(6, 0).tolist() == [5, 2, 1, 3, 0, 4]
    assert legacy_shard_permutation(0, 1).tolist() == []
