package org.apache.spark.sql

import org.apache.spark.SparkThrowable
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/** What the tests reach inside Spark 3.5 (one SparkSession class; error classes not yet called conditions). */
object SparkTestShims {
  /** A DataFrame over `rows` as they are, unchecked against `schema`. */
  def internalCreateDataFrame(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.internalCreateDataFrame(rows, schema)

  /** A session on `spark`'s SparkContext and shared state, built without any extension: the (private)
    * constructor takes (context, shared state, parent state, extensions, initial options). */
  def sessionWithoutExtensions(spark: SparkSession): SparkSession = {
    val constructor = classOf[SparkSession].getDeclaredConstructors.find(_.getParameterCount == 5).get
    constructor.setAccessible(true)
    constructor.newInstance(spark.sparkContext, Some(spark.sharedState), None, new SparkSessionExtensions,
      Map.empty[String, String]).asInstanceOf[SparkSession]
  }

  /** The error's condition (Spark 3.5 calls it the error class). */
  def errorCondition(e: SparkThrowable): String = e.getErrorClass
}
