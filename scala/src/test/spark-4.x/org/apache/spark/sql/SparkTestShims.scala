package org.apache.spark.sql

import org.apache.spark.SparkThrowable
import org.apache.spark.rdd.RDD
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.types.StructType

/** What the tests reach inside Spark 4 (the session behind the API is org.apache.spark.sql.classic's). */
object SparkTestShims {
  /** A DataFrame over `rows` as they are, unchecked against `schema`. */
  def internalCreateDataFrame(spark: SparkSession, rows: RDD[InternalRow], schema: StructType): DataFrame =
    spark.asInstanceOf[classic.SparkSession].internalCreateDataFrame(rows, schema)

  /** A session on `spark`'s SparkContext and shared state, built without any extension. The constructor takes
    * (context, shared state, parent state, extensions, initial options, user context) in every 4.x line. */
  def sessionWithoutExtensions(spark: SparkSession): SparkSession = {
    val constructor = classOf[classic.SparkSession].getConstructors.find(_.getParameterCount == 6).get
    val shared = spark.asInstanceOf[classic.SparkSession].sharedState
    constructor.newInstance(spark.sparkContext, Some(shared), None, new SparkSessionExtensions,
      Map.empty[String, String], Map.empty[String, String]).asInstanceOf[SparkSession]
  }

  /** The error's condition. */
  def errorCondition(e: SparkThrowable): String = e.getCondition
}
