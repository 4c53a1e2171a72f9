"""Command-line tools working on Petastorm datasets."""
