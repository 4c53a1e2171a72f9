package org.petastorm.spark.datasource

import java.io.File
import java.nio.file.Files

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.{DataFrame, Row, UncheckedRows}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.apache.spark.sql.functions.col
import org.apache.spark.sql.types._
import org.petastorm.spark.tensor.{Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

/**
 * Writes that cannot succeed change nothing: an append whose data does not fit the dataset fails before any of its
 * files is moved in, a job commit that fails takes out exactly what it moved in, and a null in a non-nullable column
 * fails the write naming the column.
 */
class AppendSafetySuite extends AnyFunSuite with TaskWaits {
  private def target(): String = tempDir("petastorm-append").resolve("data").toString

  private def f32(i: Int): Tensor = Tensor.fromFloats(Seq(2, 3), Array.tabulate(6)(k => (i * 10 + k).toFloat))
  private def f64(i: Int): Tensor = Tensor.fromDoubles(Seq(2, 3), Array.tabulate(6)(k => (i * 10 + k).toDouble))
  private def rank3(i: Int): Tensor = f32(i).reshape(Seq(2, 3, 1))

  private def frame(rows: Seq[(Int, Tensor)], partitions: Int = 4): DataFrame = spark.createDataFrame(
    spark.sparkContext.parallelize(rows.map { case (i, t) => Row(i, i % 3, t) }, partitions),
    StructType(Seq(StructField("id", IntegerType, nullable = false), StructField("part", IntegerType, nullable = false),
      StructField("t", new TensorUDT))))

  private def tensors(ids: Range, make: Int => Tensor): DataFrame = frame(ids.map(i => i -> make(i)))

  private def read(path: String): Map[Int, Tensor] = spark.read.format("petastorm").load(path).collect()
    .map(r => r.getAs[Int]("id") -> r.getAs[Tensor]("t")).toMap

  /** Every file and folder under `path` (hidden ones too), relative. */
  private def listing(path: String): Seq[String] = {
    val root = new File(path).toPath
    Files.walk(root).iterator().asScala.map(p => root.relativize(p).toString).toSeq.sorted
  }

  /** After a failed append: the dataset is as it was, and a valid append then adds its rows. */
  private def unchangedThenAppendable(path: String, before: Seq[String]): Unit = {
    assert(listing(path) == before)
    assert(read(path) == (0 until 40).map(i => i -> f32(i)).toMap)
    tensors(40 until 50, f32).write.mode("append").format("petastorm").save(path)
    assert(read(path) == (0 until 50).map(i => i -> f32(i)).toMap)
  }

  /** The merge error of a column holding two dtypes (named in the order the files were read). */
  private def holdsBoth(error: String): Boolean = Seq("float32 and float64", "float64 and float32")
    .exists(dtypes => error.contains(s"Column 't' holds both $dtypes tensors; a Petastorm field has one dtype"))

  private def dataset(): (String, Seq[String]) = {
    val path = target()
    tensors(0 until 40, f32).write.format("petastorm").save(path)
    (path, listing(path))
  }

  for ((what, kind, held) <- Seq(("float64 tensors to float32 (2, 3) ones", f64 _, "float64 tensor of shape (2, 3)"),
                                 ("rank-3 tensors to rank-2 ones", rank3 _, "float32 tensor of shape (2, 3, 1)"))) {
    test(s"an append of $what fails in its tasks and moves nothing in") {
      val (path, before) = dataset()
      val error = failure(tensors(100 until 110, kind).write.mode("append").format("petastorm").save(path))
      assert(error.contains(s"Column 't': the dataset stores float32 tensors of shape (2, 3); this row holds a $held"),
        error)
      unchangedThenAppendable(path, before)
    }
  }

  test("an append whose columns have other types or codecs fails before the job starts") {
    val (path, before) = dataset()
    val longIds = tensors(100 until 110, f32).withColumn("id", col("id").cast(LongType))
    val error = failure(longIds.write.mode("append").format("petastorm").save(path))
    assert(error.contains(s"Cannot append to file:$path: column 'id' is stored as int32 with codec scalar(int); the " +
      "new data has int64 with codec scalar(bigint)"), error)
    val png = failure(tensors(100 until 110, f32).write.mode("append").option("codec.t", "png").format("petastorm")
      .save(path))
    assert(png.contains("column 't' is stored as float32 (2, 3) with codec ndarray; the new data has codec png"), png)
    val extra = failure(tensors(100 until 110, f32).withColumn("x", col("id")).write.mode("append")
      .format("petastorm").save(path))
    assert(extra.contains("column 'x' is not in the dataset (columns: id, part, t)"), extra)
    unchangedThenAppendable(path, before)
  }

  test("a job commit that fails takes out exactly the files and folders it moved in") {
    val path = target()
    tensors(0 until 40, f32).write.partitionBy("part").format("petastorm").save(path)
    // Without its metadata the dataset has no stored schema to check the rows against: the commit finds the clash.
    new File(path, "_common_metadata").delete()
    new File(path, "._common_metadata.crc").delete()
    val before = listing(path)
    val rows = (100 until 110).map(i => Row(i, 3 + i % 2, f64(i)))
    val wider = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), frame(Nil).schema)
    val error = failure(wider.write.partitionBy("part").mode("append").format("petastorm").save(path))
    assert(holdsBoth(error), error)
    assert(listing(path) == before)
    assert(spark.read.parquet(path).count() == 40)
  }

  test("an overwrite whose tasks wrote two dtypes fails before the old data is deleted; a valid one replaces it") {
    val (path, before) = dataset()
    val mixed = frame(Seq(0 -> f32(0), 1 -> f64(1)), partitions = 2)
    val error = failure(mixed.write.mode("overwrite").format("petastorm").save(path))
    assert(holdsBoth(error), error)
    unchangedThenAppendable(path, before)
    val fresh = target()
    failure(mixed.write.format("petastorm").save(fresh))
    assert(!new File(fresh).exists())
    // An overwrite is not an append: it may change the dtype.
    tensors(0 until 5, f64).write.mode("overwrite").format("petastorm").save(path)
    assert(read(path) == (0 until 5).map(i => i -> f64(i)).toMap)
  }

  private val strict = StructType(Seq(StructField("id", IntegerType, nullable = false),
    StructField("n", IntegerType, nullable = false), StructField("t", new TensorUDT, nullable = false)))

  private def row(values: Any*): InternalRow = new GenericInternalRow(values.toArray)

  test("a null in a non-nullable scalar or tensor column fails the write naming the column") {
    // What createDataFrame(..., verifySchema=False) hands over: Spark's scan would read the null as 0, or fail with
    // a NullPointerException naming no column.
    val scalar = target()
    val error = failure(UncheckedRows.frame(spark, Seq(row(0, 5, TensorUDT.write(f32(0))),
      row(1, null, TensorUDT.write(f32(1)))), strict).write.format("petastorm").save(scalar))
    assert(error.contains("Column 'n' holds a null, but its type says it cannot (nullable = false)"), error)
    assert(!new File(scalar).exists())
    val tensor = target()
    val tensorError = failure(UncheckedRows.frame(spark, Seq(row(0, 5, TensorUDT.write(f32(0))), row(1, 6, null)),
      strict).write.format("petastorm").save(tensor))
    assert(tensorError.contains("Column 't' holds a null, but its type says it cannot"), tensorError)
    assert(!new File(tensor).exists())
  }

  test("a null in a nullable column stays a null") {
    val path = target()
    val nullable = StructType(strict.fields.map(_.copy(nullable = true)))
    UncheckedRows.frame(spark, Seq(row(0, null, TensorUDT.write(f32(0))), row(1, 6, null)), nullable)
      .write.format("petastorm").save(path)
    val back = spark.read.format("petastorm").load(path).orderBy("id").collect()
    assert(back.map(r => (r.getInt(0), Option(r.get(1)), Option(r.getAs[Tensor](2)))).toSeq ==
      Seq((0, None, Some(f32(0))), (1, Some(6), None)))
  }

  test("an append holding a null in a column the dataset stores as non-nullable fails naming the column") {
    val path = target()
    spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(0, 5, f32(0))), 1), strict)
      .write.format("petastorm").save(path)
    val before = listing(path)
    val nullable = StructType(strict.fields.map(_.copy(nullable = true)))
    val error = failure(spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(1, null, f32(1))), 1), nullable)
      .write.mode("append").format("petastorm").save(path))
    assert(error.contains("Column 'n' holds a null, but the dataset stores it as non-nullable"), error)
    assert(listing(path) == before)
  }
}
