"""HDFS helpers: namenode resolution from the Hadoop configuration, and namenode failover
(:mod:`petastorm.hdfs.namenode`)."""
