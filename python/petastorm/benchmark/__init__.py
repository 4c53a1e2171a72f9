"""Reader throughput measurements (``petastorm-throughput``)."""
