package org.petastorm.spark.datasource

import org.apache.spark.sql.connector.read.{Batch, InputPartition, PartitionReaderFactory, Scan, Statistics, SupportsReportStatistics}
import org.apache.spark.sql.execution.datasources.v2.parquet.{ParquetPartitionReaderFactory, ParquetScan}
import org.apache.spark.sql.types.StructType

/** Spark's Parquet scan, shown with decoded column types and read through a decoding reader factory. */
class PetastormScan(parquet: ParquetScan, plan: ReadPlan) extends Scan with Batch with SupportsReportStatistics {
  override def readSchema(): StructType = plan.readSchema(parquet.readSchema())
  override def toBatch: Batch = this
  override def description(): String = s"Petastorm ${parquet.description()}"
  override def estimateStatistics(): Statistics = parquet.estimateStatistics()
  override def planInputPartitions(): Array[InputPartition] = parquet.planInputPartitions()

  override def createReaderFactory(): PartitionReaderFactory = parquet.createReaderFactory() match {
    case factory: ParquetPartitionReaderFactory => new PetastormPartitionReaderFactory(factory, parquet.readSchema(), plan)
    case other => other
  }
}
