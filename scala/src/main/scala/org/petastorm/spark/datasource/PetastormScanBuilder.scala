package org.petastorm.spark.datasource

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.expressions.Expression
import org.apache.spark.sql.connector.expressions.filter.Predicate
import org.apache.spark.sql.connector.read.Scan
import org.apache.spark.sql.execution.datasources.PartitioningAwareFileIndex
import org.apache.spark.sql.execution.datasources.v2.FileScanBuilder
import org.apache.spark.sql.execution.datasources.v2.parquet.{ParquetScan, ParquetScanBuilder}
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap

/**
 * Plans a scan with Spark's Parquet scan underneath, over the stored (binary) types of encoded columns: column
 * pruning, partition pruning and filter pushdown to row groups work as for Parquet; filters on decoded tensor
 * columns stay above the scan.
 *
 * A FileScanBuilder (whose every method is overridden here, delegating to Parquet's) because that is what Spark 3.5
 * pushes filters into (PushDownUtils matches the class); Spark 4 matches its interface,
 * SupportsPushDownCatalystFilters. Implementing only the interfaces left Spark 3.5 without partition pruning and
 * row-group filtering.
 */
class PetastormScanBuilder(sparkSession: SparkSession, fileIndex: PartitioningAwareFileIndex, schema: StructType,
                           dataSchema: StructType, options: CaseInsensitiveStringMap, plan: ReadPlan)
  extends FileScanBuilder(sparkSession, fileIndex, plan.storageSchema(dataSchema)) {

  private val parquet = new ParquetScanBuilder(sparkSession, fileIndex, plan.storageSchema(schema),
    plan.storageSchema(dataSchema), options)
  private val decoded = schema.fieldNames.filter(n => plan.storageType(schema(n)) != schema(n)).toSet

  override def pruneColumns(requiredSchema: StructType): Unit =
    parquet.pruneColumns(plan.storageSchema(requiredSchema))

  override def pushFilters(filters: Seq[Expression]): Seq[Expression] = {
    val (onTensors, others) = filters.partition(_.references.exists(a => decoded.contains(a.name)))
    parquet.pushFilters(others) ++ onTensors
  }

  override def pushedFilters: Array[Predicate] = parquet.pushedFilters

  override def build(): Scan = new PetastormScan(parquet.build().asInstanceOf[ParquetScan], plan)
}
