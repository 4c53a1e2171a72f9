package org.petastorm.examples

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.functions.{array, col, lit}
import org.petastorm.spark.functions.{array_to_tensor, tensor_shape}
import org.petastorm.spark.tensor.Tensor

/**
 * The `petastorm` data source from Scala: build a tensor column on the executors, write a Petastorm dataset that
 * Python's `make_reader` (and Petastorm 0.13.1) can read, and read it back with tensor columns.
 *
 * {{{
 * spark-submit --packages org.petastorm:petastorm-spark-4.3_2.13:0.14.0 \
 *   --conf spark.sql.extensions=org.petastorm.spark.PetastormExtensions \
 *   --class org.petastorm.examples.PetastormScalaExample app.jar /tmp/scala-example
 * }}}
 */
object PetastormScalaExample {
  def run(spark: SparkSession, output: String): Seq[Tensor] = {
    val features = spark.range(0, 8).select(
      col("id").cast("int").as("id"),
      array((0 until 6).map(k => (col("id") * 10 + k).cast("float")): _*).as("values"))
    features.withColumn("matrix", array_to_tensor(col("values"), Seq(2, 3))).drop("values")
      .write.format("petastorm").mode("overwrite").save(output)

    val back = spark.read.format("petastorm").load(output)
    back.select(col("id"), tensor_shape(col("matrix")).as("shape")).orderBy("id").show()
    back.orderBy("id").collect().map(_.getAs[Tensor]("matrix")).toSeq
  }

  def main(args: Array[String]): Unit = {
    val spark = SparkSession.builder().appName("petastorm-scala-example").getOrCreate()
    val tensors = run(spark, args.headOption.getOrElse("/tmp/petastorm-scala-example"))
    println(s"read ${tensors.size} tensors, first: ${tensors.head}")
    spark.stop()
  }
}
