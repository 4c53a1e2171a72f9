package org.petastorm.spark.datasource

import org.apache.hadoop.fs.Path
import org.apache.parquet.schema.MessageTypeParser
import org.apache.spark.sql.{DataFrame, Row}
import org.apache.spark.sql.types.{BinaryType, IntegerType, StructField, StructType}
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.codec.{CraftedCells, DecodeLimits, ImageCodec, Npy}
import org.petastorm.spark.format.{DatasetMetadata, FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

/**
 * Crafted datasets read with format("petastorm"): a cell whose header claims more than the decode limits, or that
 * disagrees with its field, fails the task with an error naming the field, the file, the claim and the limit; nothing
 * is allocated from the claim, and the session goes on.
 */
class CraftedDataSuite extends AnyFunSuite with LocalSpark {
  /** A dataset whose Unischema declares `field`, its one column holding `cells` as stored bytes. */
  private def crafted(field: UnischemaField, cells: Seq[Array[Byte]]): String = {
    val path = tempDir("crafted").resolve("data").toString
    spark.createDataFrame(spark.sparkContext.parallelize(cells.map(Row(_)), 1),
      StructType(Seq(StructField(field.name, BinaryType, nullable = false)))).write.parquet(path)
    DatasetMetadata.write(spark.sessionState.newHadoopConf(), new Path(path),
      MessageTypeParser.parseMessageType(s"message spark_schema { required binary ${field.name}; }"),
      Map(DatasetMetadata.UnischemaJsonKey -> Unischema("Crafted", Seq(field)).toJson))
    path
  }

  private def field(name: String, dtype: String, shape: Seq[Option[Int]], codec: FieldCodec) =
    UnischemaField(name, dtype, shape, Some(codec), nullable = false)

  /** The messages of the exception `body` throws and of its causes, joined. */
  private def failure(body: => Any): String = {
    val e = intercept[Exception](body)
    Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
  }

  private def read(path: String, options: (String, String)*): DataFrame =
    spark.read.format("petastorm").options(options.toMap).load(path)

  private def withConf[T](key: String, value: String)(body: => T): T = {
    spark.conf.set(key, value)
    try body finally spark.conf.unset(key)
  }

  /** The session still runs queries (an OutOfMemoryError would have stopped its SparkContext). */
  private def assertSessionAlive(): Unit = {
    assert(!spark.sparkContext.isStopped)
    assert(spark.range(10).selectExpr("sum(id)").head().getLong(0) == 45)
  }

  private val cellBytesHint =
    "raise it with the read option maxCellBytes or the session conf spark.petastorm.maxCellBytes if the data really needs it"

  test("an NPY cell of 144 bytes whose header claims 5 * 10^8 float32 fails naming field, file and limit") {
    val path = crafted(field("n", "float32", Seq(None), FieldCodec.Ndarray),
      Seq(Npy.encode(Tensor.fromFloats(Seq(2), Array(1f, 2f))), CraftedCells.hugeNpy))
    val message = failure(read(path).collect())
    assert(message.contains("Field 'n' in file:") && message.contains(s"$path/part-") && message.contains(".parquet: " +
      s"the NPY header claims an array of 2,000,000,000 bytes, over the limit of 536,870,912 (maxCellBytes); " +
      cellBytesHint), message)
    assertSessionAlive()
    assert(read(path, "decode" -> "false").count() == 2)
  }

  test("a compressed ndarray that inflates to 1 GiB from 1 MB fails from its ZIP directory, never inflated") {
    val path = crafted(field("z", "float32", Seq(None), FieldCodec.CompressedNdarray), Seq(CraftedCells.npzBomb))
    val message = failure(read(path).collect())
    assert(message.contains("Field 'z' in file:") && message.contains(".parquet: the ZIP directory claims a member " +
      s"'arr.npy' of 1,073,741,952 bytes, over the limit of 536,870,912 (maxCellBytes); $cellBytesHint"), message)
    assertSessionAlive()
  }

  test("a PNG or JPEG header claiming 30000 x 30000 or 16000 x 16000 pixels fails before decoding") {
    for ((codec, cell, claim) <- Seq(
      ("png", CraftedCells.pngClaiming(30000, 30000), "30000 x 30000 = 900,000,000"),
      ("png", CraftedCells.pngClaiming(16000, 16000), "16000 x 16000 = 256,000,000"),
      ("jpeg", CraftedCells.jpegClaiming(30000, 30000), "30000 x 30000 = 900,000,000"))) {
      val good = ImageCodec.encode(Tensor(DType.UInt8, Seq(4, 4, 3), new Array[Byte](48)), codec)
      val path = crafted(field("image", "uint8", Seq(None, None, Some(3)), FieldCodec.Image(codec, 90)), Seq(good, cell))
      val message = failure(read(path).collect())
      assert(message.contains("Field 'image' in file:") && message.contains(s".parquet: the image's header claims " +
        s"$claim pixels, over the limit of 89,478,485 (maxImagePixels)"), message)
      assertSessionAlive()
    }
  }

  test("read options maxCellBytes and maxImagePixels, else the session confs, set the limits") {
    val path = tempDir("limits").resolve("data").toString
    spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(1, Tensor.fromFloats(Seq(250), new Array[Float](250)),
      Tensor(DType.UInt8, Seq(16, 16, 3), new Array[Byte](768))))), StructType(Seq(StructField("id", IntegerType),
      StructField("t", TensorUDT()), StructField("image", TensorUDT()))))
      .write.format("petastorm").option("codec.image", "png").save(path)
    assert(read(path).count() == 1 && read(path).head().getAs[Tensor]("t").shape == Seq(250))
    def cellBytes(message: String) = message.contains("Field 't' in file:") &&
      message.contains("the NPY header claims an array of 1,000 bytes, over the limit of 999 (maxCellBytes)")
    def pixels(message: String) = message.contains("Field 'image' in file:") &&
      message.contains("the image's header claims 16 x 16 = 256 pixels, over the limit of 255 (maxImagePixels)")
    assert(cellBytes(failure(read(path, "maxCellBytes" -> "999").collect())))
    assert(pixels(failure(read(path, "MAXIMAGEPIXELS" -> "255").select("image").collect())))
    assert(read(path, "maxCellBytes" -> "1000", "maxImagePixels" -> "256").head().getAs[Tensor]("image").shape ==
      Seq(16, 16, 3))
    withConf(DecodeLimits.MaxCellBytesConf, "999") {
      assert(cellBytes(failure(read(path).collect())))
      assert(read(path, "maxCellBytes" -> "4096").head().getAs[Tensor]("t").shape == Seq(250))
      // Catalog tables read through the FileFormat, which takes the same conf.
      read(path, "maxCellBytes" -> "4096").write.format("petastorm").saveAsTable("crafted_limits")
      try assert(cellBytes(failure(spark.table("crafted_limits").collect())))
      finally spark.sql("DROP TABLE crafted_limits")
    }
    withConf(DecodeLimits.MaxImagePixelsConf, "255")(assert(pixels(failure(read(path).collect()))))
    assert(failure(read(path, "maxCellBytes" -> "0")) == "Option maxCellBytes = '0': expected a positive whole number of bytes")
    assert(failure(read(path, "maxImagePixels" -> "many")) ==
      "Option maxImagePixels = 'many': expected a positive whole number of pixels")
    withConf(DecodeLimits.MaxCellBytesConf, "512m") {
      assert(failure(read(path).collect()).contains(
        "spark.petastorm.maxCellBytes = '512m': expected a positive whole number of bytes"))
    }
    assertSessionAlive()
  }

  test("writing a binary column of image files decodes each under the session's limits") {
    val png = ImageCodec.encode(Tensor(DType.UInt8, Seq(6, 5, 3), new Array[Byte](90)), "png")
    val df = spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(1, png))),
      StructType(Seq(StructField("id", IntegerType), StructField("photo", BinaryType))))
    val path = tempDir("write-limits").resolve("data").toString
    withConf(DecodeLimits.MaxImagePixelsConf, "29") {
      assert(failure(df.write.format("petastorm").option("codec.photo", "png").save(path)).contains(
        "Column 'photo': the image's header claims 5 x 6 = 30 pixels, over the limit of 29 (maxImagePixels)"))
    }
    df.write.format("petastorm").option("codec.photo", "png").mode("overwrite").save(path)
    assert(read(path).head().getAs[Tensor]("photo").shape == Seq(6, 5, 3))
  }

  test("NPY cells must hold their field's dtype (byte order aside), and shapes are read exactly") {
    def cell(descr: String, shape: String, data: Array[Byte]) =
      CraftedCells.npy(s"{'descr': '$descr', 'fortran_order': False, 'shape': $shape, }", data)
    val f32 = field("m", "float32", Seq(None), FieldCodec.Ndarray)
    val wrongType = crafted(f32, Seq(cell("<f8", "(2,)", new Array[Byte](16))))
    val message = failure(read(wrongType).collect())
    assert(message.contains("Field 'm' in file:") && message.contains(".parquet: the stored arrays are float64, the " +
      "field's dtype is float32 (the dataset's schema does not match its data)"), message)
    val bigEndian = java.nio.ByteBuffer.allocate(8).putFloat(1.5f).putFloat(-2f).array()
    assert(read(crafted(f32, Seq(cell(">f4", "(2,)", bigEndian)))).head().getAs[Tensor]("m").toFloatArray.toSeq ==
      Seq(1.5f, -2f))
    // Decoded on the executors as in a task: the reader's row decoder, with the file name it is given.
    val storage = StructType(Seq(StructField("m", BinaryType)))
    def decode(f: UnischemaField, bytes: Array[Byte]): String = intercept[IllegalArgumentException](
      ReadPlan(Some(Unischema("Crafted", Seq(f))), decode = true).decoder(storage, "file:/d/part-0.parquet").get
        .apply(org.apache.spark.sql.catalyst.InternalRow(bytes))).getMessage
    assert(decode(f32, cell("<f4", "(4294967299,)", new Array[Byte](12))) == "Field 'm' in file:/d/part-0.parquet: NPY " +
      "header shape (4294967299,) has a dimension of 4294967299, more than a JVM array holds (2147483647)")
    assert(decode(f32, cell("<i4", "(2,)", new Array[Byte](8))).endsWith(": the stored arrays are int32, the field's " +
      "dtype is float32 (the dataset's schema does not match its data)"))
    val long = Array[Byte](0x93.toByte, 'N', 'U', 'M', 'P', 'Y', 2, 0, -1, -1, -1, -1) ++ "{}".getBytes("UTF-8")
    assert(decode(f32, long) == "Field 'm' in file:/d/part-0.parquet: truncated NPY header: needs 4294967307 bytes, got 14")
    val strings = field("m", "string", Seq(None, None), FieldCodec.Ndarray)
    assert(decode(strings, cell("|S2", "(1, 2)", "abcd".getBytes("UTF-8"))) == "Field 'm' in file:/d/part-0.parquet: " +
      "the stored arrays are |S2, the field's dtype is string (the dataset's schema does not match its data)")
    assert(decode(strings, cell("<U1", "(2147483647, 0)", Array())).startsWith("Field 'm' in file:/d/part-0.parquet: " +
      "the NPY header claims a string array of shape (2147483647, 0), 2147483648 nested arrays of 34,359,738,368 " +
      "bytes, over the limit of 536,870,912 (maxCellBytes)"))
  }
}
