"""Helpers over pyarrow tables (the original's ``petastorm.pyarrow_helpers`` package)."""
