package org.petastorm.spark.datasource

import java.nio.file.Files

import org.apache.hadoop.fs.Path
import org.apache.spark.sql.Row
import org.apache.spark.sql.types._
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.format.{DatasetMetadata, FieldCodec, LegacyPickle}
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

class DataSourceRoundTripSuite extends AnyFunSuite with LocalSpark {
  private def target(): String = Files.createTempDirectory("petastorm-ds").resolve("data").toString

  private def tensorFrame(tensors: Seq[Tensor]) = spark.createDataFrame(
    spark.sparkContext.parallelize(tensors.zipWithIndex.map { case (t, i) => Row(i, t) }, 2),
    StructType(Seq(StructField("id", IntegerType, nullable = false), StructField("t", new TensorUDT))))

  test("tensor columns written with format(petastorm) read back equal, with metadata") {
    val tensors = (0 until 10).map(i => Tensor.fromFloats(Seq(2, 3), Array.tabulate(6)(k => (i * 10 + k).toFloat)))
    val path = target()
    tensorFrame(tensors).write.format("petastorm").save(path)
    val back = spark.read.format("petastorm").load(path)
    assert(back.schema("t").dataType == new TensorUDT)
    assert(back.orderBy("id").collect().map(_.getAs[Tensor]("t")).toSeq == tensors)

    val conf = spark.sessionState.newHadoopConf()
    val schema = DatasetMetadata.readSchema(conf, new Path(path)).get
    val t = schema.field("t").get
    assert(t.dtype == "float32" && t.shape == Seq(Some(2), Some(3)) && t.codec.contains(FieldCodec.Ndarray))
    assert(schema.field("id").get.codec.contains(FieldCodec.Scalar(IntegerType)))
    val pickled = DatasetMetadata.read(conf, new Path(path))(DatasetMetadata.UnischemaPickleKey)
    assert(LegacyPickle.readUnischema(pickled) == schema)
    assert(new java.io.File(path, "_SUCCESS").exists())
  }

  test("varying dimensions are recorded as None and decode=false returns the stored bytes") {
    val tensors = Seq(Tensor.fromInts(Seq(2, 3), Array.fill(6)(1)), Tensor.fromInts(Seq(4, 3), Array.fill(12)(2)))
    val path = target()
    tensorFrame(tensors).write.format("petastorm").option("codec.t", "compressed_ndarray").save(path)
    val schema = DatasetMetadata.readSchema(spark.sessionState.newHadoopConf(), new Path(path)).get
    assert(schema.field("t").get.shape == Seq(None, Some(3)))
    assert(spark.read.format("petastorm").load(path).orderBy("id").collect().map(_.getAs[Tensor]("t")).toSeq == tensors)
    assert(spark.read.format("petastorm").option("decode", "false").load(path).schema("t").dataType == BinaryType)
  }
}

class SchemaFieldsSuite extends AnyFunSuite with LocalSpark {
  test("schemaFields keeps the named and regex-matched columns only") {
    val path = Files.createTempDirectory("petastorm-fields").resolve("data").toString
    spark.range(0, 4).selectExpr("CAST(id AS INT) AS id", "id * 2 AS feature_a", "id * 3 AS feature_b",
      "array_to_tensor(array(CAST(id AS FLOAT)), array(1)) AS t").write.format("petastorm").save(path)
    val df = spark.read.format("petastorm").option("schemaFields", "id, feature_.*").load(path)
    assert(df.columns.toSeq == Seq("id", "feature_a", "feature_b"))
    assert(df.orderBy("id").collect().map(_.getLong(2)).toSeq == Seq(0L, 3L, 6L, 9L))
    val e = intercept[IllegalArgumentException](spark.read.format("petastorm").option("schemaFields", "nope").load(path))
    assert(e.getMessage.contains("matches none of id, feature_a, feature_b, t"))
  }
}
