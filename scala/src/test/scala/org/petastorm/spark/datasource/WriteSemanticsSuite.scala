package org.petastorm.spark.datasource

import java.io.File

import org.apache.hadoop.fs.Path
import org.apache.spark.TaskContext
import org.apache.spark.scheduler.{SparkListener, SparkListenerTaskEnd}
import org.apache.spark.sql.{DataFrame, SaveMode}
import org.apache.spark.sql.functions.{col, udf}
import org.apache.spark.sql.types._
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.format.DatasetMetadata
import org.petastorm.spark.functions.array_to_tensor
import org.petastorm.spark.tensor.Tensor
import org.scalatest.funsuite.AnyFunSuite

class WriteSemanticsSuite extends AnyFunSuite with TaskWaits {
  private def target(): String = tempDir("petastorm-write").resolve("data").toString

  private def frame(n: Int, offset: Int = 0): DataFrame = spark.range(offset, offset + n, 1, 4).toDF("id")
    .withColumn("id", col("id").cast(IntegerType))
    .withColumn("t", array_to_tensor(org.apache.spark.sql.functions.array(col("id").cast(FloatType),
      (col("id") * 2).cast(FloatType)), Seq(2)))
    .withColumn("part", (col("id") % 3).cast(StringType))

  private def read(path: String): Map[Int, Seq[Float]] = spark.read.format("petastorm").load(path).collect()
    .map(r => r.getAs[Int]("id") -> r.getAs[Tensor]("t").toFloatArray.toSeq).toMap

  private def expected(ids: Range): Map[Int, Seq[Float]] = ids.map(i => i -> Seq(i.toFloat, 2f * i)).toMap

  private val failFirstAttempt = udf { (id: Int) =>
    val ctx = TaskContext.get()
    if (ctx.attemptNumber() == 0 && ctx.partitionId() % 2 == 0) throw new RuntimeException("planned failure")
    id
  }
  private val failAlways = udf { (id: Int) =>
    if (TaskContext.get().partitionId() == 1) throw new RuntimeException("planned failure")
    id
  }

  test("tasks that fail on their first attempt are retried and the dataset ends complete and exact") {
    val path = target()
    frame(40).withColumn("id", failFirstAttempt(col("id"))).write.format("petastorm").save(path)
    assert(read(path) == expected(0 until 40))
    val counts = DatasetMetadata.read(spark.sessionState.newHadoopConf(), new Path(path))(DatasetMetadata.RowGroupsPerFileKey)
    assert(DatasetMetadata.parseRowGroups(new String(counts, "UTF-8")).size == new File(path).list().count(_.endsWith(".parquet")))
  }

  test("a failed job leaves no dataset behind") {
    val path = target()
    afterAllTasksEnd(intercept[Exception](frame(40).withColumn("id", failAlways(col("id"))).write.format("petastorm").save(path)))
    assert(!new File(path).exists(), s"left ${Option(new File(path).list()).map(_.toSeq)}")
  }

  test("a failed append or overwrite leaves the dataset as it was") {
    val path = target()
    frame(10).write.format("petastorm").save(path)
    val before = new File(path).list().sorted.toSeq
    afterAllTasksEnd(intercept[Exception](
      frame(10, 100).withColumn("id", failAlways(col("id"))).write.mode("append").format("petastorm").save(path)))
    afterAllTasksEnd(intercept[Exception](
      frame(10, 100).withColumn("id", failAlways(col("id"))).write.mode("overwrite").format("petastorm").save(path)))
    assert(new File(path).list().sorted.toSeq == before)
    assert(read(path) == expected(0 until 10))
  }

  test("save modes: errorifexists, ignore, append (schema-checked) and overwrite") {
    val path = target()
    frame(10).write.format("petastorm").save(path)
    intercept[Exception](frame(10).write.format("petastorm").save(path))
    frame(5, 50).write.mode(SaveMode.Ignore).format("petastorm").save(path)
    assert(read(path) == expected(0 until 10))
    frame(5, 10).write.mode(SaveMode.Append).format("petastorm").save(path)
    assert(read(path) == expected(0 until 15))
    val wrongType = frame(3, 20).withColumn("part", col("id"))
    val e = intercept[Exception](wrongType.write.mode(SaveMode.Append).format("petastorm").save(path))
    assert(e.getMessage.contains("column 'part' is stored as string"), e.getMessage)
    frame(4, 30).write.mode(SaveMode.Overwrite).format("petastorm").save(path)
    assert(read(path) == expected(30 until 34))
  }

  test("partitionBy writes Hive partitions that are pruned when read") {
    val path = target()
    frame(30).write.partitionBy("part").format("petastorm").save(path)
    assert(new File(path).list().count(_.startsWith("part=")) == 3)
    val rows = recordsRead(spark.read.format("petastorm").load(path).where(col("part") === "1").collect().length)
    assert(rows == (10, 10))
  }

  test("filters on scalar columns are pushed to Parquet row groups") {
    val path = target()
    frame(2000).coalesce(1).write.format("petastorm").option("rowGroupSizeMB", "0.01").save(path)
    val groups = DatasetMetadata.parseRowGroups(new String(
      DatasetMetadata.read(spark.sessionState.newHadoopConf(), new Path(path))(DatasetMetadata.RowGroupsPerFileKey), "UTF-8"))
    assert(groups.values.sum > 4, groups)
    val (matched, read) = recordsRead(spark.read.format("petastorm").load(path).where(col("id") < 10).collect().length)
    assert(matched == 10)
    assert(read < 1000, s"read $read rows for 10 matches: row groups were not skipped")
  }

  /** (result of `body`, rows the scans read), measured from task input metrics. */
  private def recordsRead(body: => Int): (Int, Long) = {
    var records = 0L
    val listener = new SparkListener {
      override def onTaskEnd(end: SparkListenerTaskEnd): Unit =
        synchronized { records += end.taskMetrics.inputMetrics.recordsRead }
    }
    spark.sparkContext.addSparkListener(listener)
    try {
      val result = body
      org.apache.spark.ListenerBusAccess.drain(spark.sparkContext)
      (result, synchronized(records))
    } finally spark.sparkContext.removeSparkListener(listener)
  }
}

class CatalogTableSuite extends AnyFunSuite with LocalSpark {
  test("saveAsTable writes a petastorm table that reads back with tensor columns") {
    spark.sql("DROP TABLE IF EXISTS petastorm_tensors")
    val df = spark.range(0, 6).selectExpr("CAST(id AS INT) AS id",
      "array_to_tensor(array(CAST(id AS FLOAT), 1.0f), array(2)) AS t")
    df.write.format("petastorm").saveAsTable("petastorm_tensors")
    val back = spark.table("petastorm_tensors").orderBy("id").collect()
    assert(back.map(_.getAs[Tensor]("t").toFloatArray.toSeq).toSeq == (0 until 6).map(i => Seq(i.toFloat, 1f)))
    assert(spark.sql("SELECT tensor_shape(t) FROM petastorm_tensors WHERE id = 2").collect().head.getSeq[Int](0) == Seq(2))
    spark.sql("DROP TABLE petastorm_tensors")
  }
}
