package org.petastorm.spark.shims

import org.apache.parquet.column.ParquetProperties
import org.apache.parquet.hadoop.{ParquetFileWriter, ParquetWriter}
import org.apache.parquet.io.OutputFile
import org.apache.parquet.schema.MessageType

/** Parquet as Spark 4 ships it (parquet-java 1.15+): writers take ParquetProperties (the older forms are deprecated). */
object ParquetShims {
  /** A writer (overwriting `file`) for a footer-only file such as `_common_metadata`, with Parquet's defaults. */
  def footerWriter(file: OutputFile, schema: MessageType): ParquetFileWriter =
    new ParquetFileWriter(file, schema, ParquetFileWriter.Mode.OVERWRITE, ParquetWriter.DEFAULT_BLOCK_SIZE.toLong, 0,
      null, ParquetProperties.builder().build())
}
