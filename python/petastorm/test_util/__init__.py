"""Test utilities (the original's ``petastorm.test_util``): a mock reader and shuffling analysis helpers."""
