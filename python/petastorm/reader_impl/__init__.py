"""Single-threaded reading engine pieces: planning which row groups to read, and reading/decoding them."""
