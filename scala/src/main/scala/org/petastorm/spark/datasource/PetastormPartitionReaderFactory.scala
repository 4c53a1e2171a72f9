package org.petastorm.spark.datasource

import org.apache.spark.sql.catalyst.FileSourceOptions
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.connector.read.{InputPartition, PartitionReader}
import org.apache.spark.sql.execution.datasources.PartitionedFile
import org.apache.spark.sql.execution.datasources.v2.FilePartitionReaderFactory
import org.apache.spark.sql.execution.datasources.v2.parquet.ParquetPartitionReaderFactory
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.vectorized.ColumnarBatch

/** Reads each file with Spark's Parquet reader and decodes the encoded columns of every row on the executor. */
class PetastormPartitionReaderFactory(parquet: ParquetPartitionReaderFactory, storage: StructType, plan: ReadPlan)
  extends FilePartitionReaderFactory {

  override def options: FileSourceOptions = parquet.options

  private def decodes: Boolean = plan.decoder(storage, "").isDefined

  override def supportColumnarReads(partition: InputPartition): Boolean =
    !decodes && parquet.supportColumnarReads(partition)

  override def buildColumnarReader(file: PartitionedFile): PartitionReader[ColumnarBatch] =
    parquet.buildColumnarReader(file)

  override def buildReader(file: PartitionedFile): PartitionReader[InternalRow] = {
    val rows = parquet.buildReader(file)
    plan.decoder(storage, file.filePath.toString) match {
      case None => rows
      case Some(decoder) => new PartitionReader[InternalRow] {
        override def next(): Boolean = rows.next()
        override def get(): InternalRow = decoder(rows.get())
        override def close(): Unit = rows.close()
      }
    }
  }
}
