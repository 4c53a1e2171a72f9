package org.petastorm.spark.datasource


import org.apache.hadoop.fs.Path
import org.apache.spark.sql.Row
import org.apache.spark.sql.types._
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.format.{DatasetMetadata, FieldCodec, LegacyPickle}
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

class DataSourceRoundTripSuite extends AnyFunSuite with LocalSpark {
  private def target(): String = tempDir("petastorm-ds").resolve("data").toString

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
    val path = tempDir("petastorm-fields").resolve("data").toString
    spark.range(0, 4).selectExpr("CAST(id AS INT) AS id", "id * 2 AS feature_a", "id * 3 AS feature_b",
      "array_to_tensor(array(CAST(id AS FLOAT)), array(1)) AS t").write.format("petastorm").save(path)
    val df = spark.read.format("petastorm").option("schemaFields", "id, feature_.*").load(path)
    assert(df.columns.toSeq == Seq("id", "feature_a", "feature_b"))
    assert(df.orderBy("id").collect().map(_.getLong(2)).toSeq == Seq(0L, 3L, 6L, 9L))
    val e = intercept[IllegalArgumentException](spark.read.format("petastorm").option("schemaFields", "nope").load(path))
    assert(e.getMessage.contains("matches none of id, feature_a, feature_b, t"))
  }
}

class EveryDTypeSuite extends AnyFunSuite with LocalSpark {
  private val shapes = Seq(Seq(), Seq(0), Seq(3), Seq(4, 5, 2))

  private def sample(dtype: DType, shape: Seq[Int], seed: Int): Tensor = {
    val rnd = new scala.util.Random(seed)
    val n = shape.product
    dtype match {
      case DType.Bool => Tensor.fromBooleans(shape, Array.fill(n)(rnd.nextBoolean()))
      case d if d.isFloating => Tensor.fromDoubles(d, shape, Array.fill(n)(rnd.nextGaussian() * 100))
      case d =>
        val (lo, hi) = d.integralRange
        Tensor.fromLongs(d, shape, Array.fill(n)(lo + (rnd.nextDouble() * (hi.toDouble - lo.toDouble)).toLong))
    }
  }

  for (codec <- Seq("ndarray", "compressed_ndarray")) {
    test(s"every dtype and shape round-trips with codec $codec") {
      val columns = shapes.indices.map(k => s"t$k")
      val schema = StructType(StructField("id", IntegerType, nullable = false) +: columns.map(StructField(_, new TensorUDT)))
      DType.all.zipWithIndex.foreach { case (dtype, seed) =>
        val rows = (0 until 3).map(i => Row(i +: shapes.indices.map(k => sample(dtype, shapes(k), seed * 100 + i * 10 + k)): _*))
        val path = tempDir(s"dtype-${dtype.name}").resolve("data").toString
        val writer = spark.createDataFrame(spark.sparkContext.parallelize(rows, 2), schema).write.format("petastorm")
        columns.foldLeft(writer)((w, c) => w.option(s"codec.$c", codec)).save(path)
        val back = spark.read.format("petastorm").load(path).orderBy("id").collect()
        assert(back.map(r => columns.map(r.getAs[Tensor])).toSeq == rows.map(_.toSeq.tail), s"${dtype.name}, $codec")
      }
    }
  }

  test("image codecs round-trip uint8 grey and RGB (PNG exact, JPEG close) and uint16 PNG") {
    val rnd = new scala.util.Random(3)
    def img(d: DType, shape: Seq[Int]) = Tensor(d, shape, Array.fill(shape.product * d.itemSize)(rnd.nextInt(256).toByte))
    for ((codec, tensor) <- Seq("png" -> img(DType.UInt8, Seq(6, 5, 3)), "png" -> img(DType.UInt8, Seq(6, 5)),
      "png" -> img(DType.UInt16, Seq(4, 4, 3)), "jpeg:95" -> Tensor.fromLongs(DType.UInt8, Seq(16, 16, 3),
        Array.tabulate(768)(i => (i / 3 % 16 * 8).toLong)))) {
      val path = tempDir("image-codec").resolve("data").toString
      spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(1, tensor))), StructType(Seq(
        StructField("id", IntegerType), StructField("t", new TensorUDT))))
        .write.format("petastorm").option("codec.t", codec).save(path)
      val back = spark.read.format("petastorm").load(path).first().getAs[Tensor]("t")
      if (codec == "png") assert(back == tensor, s"$codec ${tensor.shape}")
      else {
        assert(back.shape == tensor.shape && back.dtype == tensor.dtype)
        assert(back.toDoubleArray.zip(tensor.toDoubleArray).map { case (a, b) => math.abs(a - b) }.max <= 8)
      }
    }
  }
}

class ImageBytesSuite extends AnyFunSuite with LocalSpark {
  test("a binary column of PNG files is stored as it is and read back as image tensors") {
    val images = (0 until 4).map(i => Tensor(DType.UInt8, Seq(5 + i, 6, 3), Array.tabulate((5 + i) * 18)(k => (k * i).toByte)))
    val pngs = images.map(t => org.petastorm.spark.codec.ImageCodec.encode(t, "png"))
    val path = tempDir("image-bytes").resolve("data").toString
    spark.createDataFrame(spark.sparkContext.parallelize(pngs.zipWithIndex.map { case (b, i) => Row(i, b) }),
      StructType(Seq(StructField("id", IntegerType), StructField("photo", BinaryType))))
      .write.format("petastorm").option("codec.photo", "png").save(path)
    val field = DatasetMetadata.readSchema(spark.sessionState.newHadoopConf(), new Path(path)).get.field("photo").get
    assert(field.shape == Seq(None, Some(6), Some(3)) && field.dtype == "uint8")
    assert(spark.read.parquet(path).orderBy("id").collect().map(_.getAs[Array[Byte]]("photo").toSeq).toSeq == pngs.map(_.toSeq))
    assert(spark.read.format("petastorm").load(path).orderBy("id").collect().map(_.getAs[Tensor]("photo")).toSeq == images)
    val e = intercept[Exception](spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(1, pngs.head))),
      StructType(Seq(StructField("id", IntegerType), StructField("photo", BinaryType))))
      .write.format("petastorm").option("codec.photo", "jpeg").save(path + "-jpeg"))
    assert(Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).exists(
      _.getMessage.contains("Column 'photo': codec.jpeg expects JPEG files, got PNG")))
  }
}
