package org.petastorm.spark.shims

import org.apache.parquet.column.ParquetProperties
import org.apache.parquet.hadoop.{ParquetFileWriter, ParquetWriter}
import org.apache.parquet.io.OutputFile
import org.apache.parquet.schema.MessageType

/** Parquet as Spark 3.5 ships it (parquet-mr 1.13): writers take the properties as separate arguments. */
object ParquetShims {
  /** A writer (overwriting `file`) for a footer-only file such as `_common_metadata`, with Parquet's defaults. */
  def footerWriter(file: OutputFile, schema: MessageType): ParquetFileWriter =
    new ParquetFileWriter(file, schema, ParquetFileWriter.Mode.OVERWRITE, ParquetWriter.DEFAULT_BLOCK_SIZE.toLong, 0,
      ParquetProperties.DEFAULT_COLUMN_INDEX_TRUNCATE_LENGTH, ParquetProperties.DEFAULT_STATISTICS_TRUNCATE_LENGTH,
      ParquetProperties.DEFAULT_PAGE_WRITE_CHECKSUM_ENABLED)
}
