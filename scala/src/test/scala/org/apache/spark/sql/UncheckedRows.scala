package org.apache.spark.sql

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/**
 * Test access to the DataFrame Spark builds from rows it does not check against their schema: what PySpark's
 * `createDataFrame(..., verifySchema=False)` makes (a LogicalRDD over the rows as they are).
 */
object UncheckedRows {
  def frame(spark: SparkSession, rows: Seq[InternalRow], schema: StructType): DataFrame =
    SparkTestShims.internalCreateDataFrame(spark, spark.sparkContext.parallelize(rows, 2), schema)
}
