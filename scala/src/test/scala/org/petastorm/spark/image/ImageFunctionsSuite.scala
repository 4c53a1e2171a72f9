package org.petastorm.spark.image

import java.io.RandomAccessFile
import java.nio.file.{Files, Path}

import org.apache.spark.ml.linalg.Vectors
import org.apache.spark.sql.{AnalysisException, DataFrame, Row}
import org.apache.spark.sql.functions.length
import org.apache.spark.sql.types.{LongType, StructField, StructType}
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.codec.{CraftedCells, DecodeLimits, ImageCodec}
import org.petastorm.spark.functions._
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

class ImageFunctionsSuite extends AnyFunSuite with LocalSpark {
  import spark.implicits._

  private def image(h: Int, w: Int, c: Int, seed: Int): Tensor =
    Tensor(DType.UInt8, Seq(h, w, c), Array.tabulate(h * w * c)(i => (i * seed + i / 7).toByte))

  private lazy val dir: Path = {
    val d = tempDir("petastorm-images")
    Files.write(d.resolve("a.png"), ImageCodec.encode(image(6, 8, 3, 3), "png"))
    Files.write(d.resolve("b.png"), ImageCodec.encode(image(4, 5, 4, 5), "png"))
    Files.write(d.resolve("c.jpg"), ImageCodec.encode(image(16, 16, 3, 1), "jpeg", 90))
    Files.write(d.resolve("broken.png"), "not an image".getBytes("UTF-8"))
    d
  }

  private def withOnError[T](value: String)(body: => T): T = {
    spark.conf.set(OnImageError.ConfKey, value)
    try body finally spark.conf.unset(OnImageError.ConfKey)
  }

  private def failure(body: => Any): String = {
    val e = intercept[Exception](body)
    Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
  }

  private def tensors(df: DataFrame): Seq[Tensor] = df.collect().map(_.getAs[Tensor](0)).toSeq
  private def first(df: DataFrame): Tensor = tensors(df).head

  private def path(name: String): String = dir.resolve(name).toUri.toString

  test("load_image reads every file of a directory through Hadoop's FileSystem") {
    val rows = Seq("a.png", "b.png", "c.jpg").map(path).toDF("path")
      .select($"path", load_image($"path").as("image")).collect().map(r => r.getString(0) -> r.getAs[Tensor](1)).toMap
    assert(rows(path("a.png")) == image(6, 8, 3, 3))
    assert(rows(path("b.png")) == image(4, 5, 4, 5))
    assert(rows(path("c.jpg")).shape == Seq(16, 16, 3))
    val plain = first(spark.sql(s"SELECT load_image('${dir.resolve("a.png")}')"))
    assert(plain == image(6, 8, 3, 3))
  }

  test("load_image resizes and converts channels") {
    val t = first(Seq(path("b.png")).toDF("path").select(load_image($"path", 8, 10, 3)))
    assert(t.dtype == DType.UInt8 && t.shape == Seq(8, 10, 3))
    assert(t == ImageResize.resize(ImageCodec.decode(ImageCodec.encode(image(4, 5, 4, 5), "png"), Some(3)), 8, 10))
    val grey = first(spark.sql(s"SELECT load_image('${path("a.png")}', NULL, NULL, 1)"))
    assert(grey.shape == Seq(6, 8, 1))
  }

  test("unreadable files and bad bytes give null and are counted by default") {
    val before = ImageFailures.count(spark)
    val images = tensors(Seq(path("a.png"), path("broken.png"), path("missing.png"), null).toDF("path")
      .select(load_image($"path")))
    assert(images.head != null && images.tail.forall(_ == null))
    assert(ImageFailures.count(spark) - before == 2)
    val decoded = first(Seq(Array[Byte](1, 2, 3)).toDF("bytes").select(decode_image($"bytes")))
    assert(decoded == null && ImageFailures.count(spark) - before == 3)
  }

  test("image_failure_count() is the driver's count when the query is analysed") {
    def count(): Long = spark.sql("SELECT image_failure_count()").collect().head.getLong(0)
    val before = ImageFailures.count(spark)
    assert(count() == before)
    assert(first(Seq(path("broken.png")).toDF("path").select(load_image($"path"))) == null)
    assert(count() == before + 1 && ImageFailures.count(spark) == before + 1)
    assert(spark.sql("SELECT image_failure_count() AS n").schema("n").dataType == LongType)
    assert(failure(spark.sql("SELECT image_failure_count(1)").collect())
      .contains("image_failure_count takes 0 arguments"))
  }

  test("with spark.petastorm.image.onError=fail errors name the path and the reason") {
    withOnError("fail") {
      val broken = failure(Seq(path("broken.png")).toDF("p").select(load_image($"p")).collect())
      assert(broken.contains(s"load_image: cannot decode '${path("broken.png")}': Expected PNG, JPEG, BMP or GIF " +
        "data, got 12 bytes starting with 6e 6f 74 20 61 6e 20 69"), broken)
      val missing = failure(Seq(path("missing.png")).toDF("p").select(load_image($"p")).collect())
      assert(missing.contains(s"load_image: cannot read '${path("missing.png")}': file not found"), missing)
      val bytes = failure(spark.sql("SELECT decode_image(X'0102')").collect())
      assert(bytes.contains("decode_image: cannot decode image bytes: Expected PNG"), bytes)
    }
    withOnError("ignore") {
      assert(failure(spark.sql("SELECT decode_image(X'0102')").collect())
        .contains("decode_image: spark.petastorm.image.onError must be 'null' or 'fail', got 'ignore'"))
    }
  }

  test("with onError=fail a missing and a corrupt file fail alike: IllegalArgumentException naming path and cause") {
    def error(body: => Any): Throwable = {
      val e = intercept[Exception](body)
      Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).find(_.getMessage.startsWith("load_image:"))
        .getOrElse(fail(s"no load_image error in $e"))
    }
    withOnError("fail") {
      for (name <- Seq("missing.png", "broken.png")) {
        // In a task (the error reaches the driver as the cause of the job's failure) and folded on the driver.
        val inTask = error(Seq(path(name)).toDF("p").select(load_image($"p")).collect())
        val folded = error(spark.sql(s"SELECT load_image('${path(name)}')").collect())
        for (e <- Seq(inTask, folded)) {
          assert(e.getClass == classOf[IllegalArgumentException], e)
          if (name == "missing.png") assert(e.getMessage == s"load_image: cannot read '${path(name)}': file not found")
          else assert(e.getMessage.startsWith(s"load_image: cannot decode '${path(name)}': Expected PNG, JPEG"), e)
        }
      }
    }
  }

  test("decode_image reads the content of the binaryFile source") {
    val df = spark.read.format("binaryFile").option("pathGlobFilter", "*.png").load(dir.toString)
      .select($"path", decode_image($"content", 3, 3).as("image"))
    val byName = df.collect().map(r => r.getString(0).split('/').last -> r.getAs[Tensor](1)).toMap
    assert(byName("a.png").shape == Seq(3, 3, 3) && byName("b.png").shape == Seq(3, 3, 4) && byName("broken.png") == null)
  }

  test("encode_image and decode_image round trip; JPEG quality changes the size") {
    val t = image(20, 30, 3, 11)
    val df = spark.createDataFrame(spark.sparkContext.parallelize(Seq(Row(t))),
      StructType(Seq(StructField("t", TensorUDT()))))
    assert(first(df.select(decode_image(encode_image($"t", "png")))) == t)
    val (small, default) = df.select(length(encode_image($"t", "jpeg", 20)), length(encode_image($"t", "jpeg")))
      .as[(Int, Int)].head()
    assert(small < default)
    assert(spark.sql("SELECT encode_image(array_to_tensor(CAST(NULL AS array<int>), array(1, 1), 'uint8'), 'png')")
      .head().isNullAt(0))
  }

  test("vector_to_tensor turns dense and sparse vectors into float64 tensors") {
    val df = Seq((1, Vectors.dense(1.0, 2.0, 3.0, 4.0)), (2, Vectors.sparse(4, Array(1, 3), Array(5.0, 6.0))),
      (3, null)).toDF("id", "v")
    val flat = tensors(df.orderBy("id").select(vector_to_tensor($"v")))
    assert(flat(0) == Tensor.fromDoubles(Seq(4), Array(1.0, 2.0, 3.0, 4.0)))
    assert(flat(1) == Tensor.fromDoubles(Seq(4), Array(0.0, 5.0, 0.0, 6.0)))
    assert(flat(2) == null)
    df.createOrReplaceTempView("vectors")
    val square = first(spark.sql("SELECT vector_to_tensor(v, array(2, -1)) FROM vectors WHERE id = 2"))
    assert(square.shape == Seq(2, 2) && square.toDoubleArrayExact.toSeq == Seq(0.0, 5.0, 0.0, 6.0))
    assert(failure(spark.sql("SELECT vector_to_tensor(v, array(3)) FROM vectors WHERE id = 1").collect())
      .contains("vector_to_tensor: Shape (3) needs 3 elements, got 4"))
  }

  test("wrong argument types and constants fail with the function's name") {
    def analysis(sql: String) = intercept[AnalysisException](spark.sql(sql).collect()).getMessage
    assert(analysis("SELECT load_image(1)").contains("load_image expects a path string, got int"))
    assert(analysis("SELECT decode_image('x')").contains("decode_image expects a binary column, got string"))
    assert(analysis("SELECT encode_image(X'00', 'png')").contains("encode_image expects a tensor column, got binary"))
    assert(analysis("SELECT vector_to_tensor(array(1.0D))")
      .contains("vector_to_tensor expects a Spark ML vector column (org.apache.spark.ml.linalg.Vector), got array<double>"))
    assert(failure(spark.sql("SELECT load_image('x', 10)").collect()).contains("load_image takes 1 or 3 or 4 arguments"))
    assert(failure(spark.sql("SELECT load_image('x', 10, NULL)").collect())
      .contains("load_image: give both height and width (to resize) or neither"))
    assert(failure(spark.sql("SELECT decode_image(X'00', 2, 2, 2)").collect())
      .contains("decode_image: channels must be 1, 3 or 4, got 2"))
    assert(failure(spark.sql("SELECT decode_image(X'00', 0, 2)").collect()).contains("cannot resize to 0 x 2 pixels"))
    assert(failure(spark.sql("SELECT load_image('x', 'a', 'b')").collect())
      .contains("load_image: the height must be an integer, got string"))
    assert(failure(spark.sql("SELECT encode_image(array_to_tensor(array(1), array(1, 1), 'uint8'), 'gif')").collect())
      .contains("encode_image: the format must be 'png' or 'jpeg', got 'gif'"))
    assert(failure(spark.sql("SELECT encode_image(array_to_tensor(array(1), array(1, 1), 'uint8'), 'jpeg', 0)")
      .collect()).contains("encode_image: the quality must be 1 to 100, got 0"))
    assert(failure(spark.sql("SELECT encode_image(array_to_tensor(array(1.0D), array(1, 1)), 'png')").collect())
      .contains("encode_image: Cannot encode a float64 tensor as png"))
  }

  test("an image whose header claims 30000 x 30000 pixels: null and counted by default, a clear error with fail") {
    val huge = tempDir("petastorm-huge").resolve("huge.png")
    Files.write(huge, CraftedCells.pngClaiming(30000, 30000))
    val hugePath = huge.toUri.toString
    val claim = "the image's header claims 30000 x 30000 = 900,000,000 pixels, over the limit of 89,478,485 " +
      "(maxImagePixels); raise it with the read option maxImagePixels or the session conf " +
      "spark.petastorm.maxImagePixels if the data really needs it"
    val bytes = Seq(CraftedCells.pngClaiming(30000, 30000)).toDF("b")
    val before = ImageFailures.count(spark)
    assert(first(bytes.select(decode_image($"b"))) == null && ImageFailures.count(spark) - before == 1)
    assert(first(Seq(hugePath).toDF("p").select(load_image($"p"))) == null && ImageFailures.count(spark) - before == 2)
    withOnError("fail") {
      assert(failure(bytes.select(decode_image($"b", 4, 4)).collect()).contains(
        s"decode_image: cannot decode image bytes: $claim"))
      assert(failure(Seq(hugePath).toDF("p").select(load_image($"p")).collect()).contains(
        s"load_image: cannot decode '$hugePath': $claim"))
    }
    assert(!spark.sparkContext.isStopped && spark.range(10).selectExpr("sum(id)").head().getLong(0) == 45)
  }

  test("spark.petastorm.maxImagePixels, read when the query is analysed, is the limit of both functions") {
    val png = ImageCodec.encode(image(6, 8, 3, 3), "png")
    def decoded = Seq(png).toDF("b").select(decode_image($"b"))
    def withLimit[T](value: String)(body: => T): T = {
      spark.conf.set(DecodeLimits.MaxImagePixelsConf, value)
      try body finally spark.conf.unset(DecodeLimits.MaxImagePixelsConf)
    }
    withOnError("fail") {
      withLimit("47") {
        assert(failure(decoded.collect()).contains("decode_image: cannot decode image bytes: the image's header " +
          "claims 8 x 6 = 48 pixels, over the limit of 47 (maxImagePixels)"))
        assert(failure(spark.sql(s"SELECT load_image('${path("a.png")}')").collect()).contains(
          s"load_image: cannot decode '${path("a.png")}': the image's header claims 8 x 6 = 48 pixels"))
      }
      assert(withLimit("48")(first(decoded)) == image(6, 8, 3, 3))
      withLimit("lots") {
        assert(failure(decoded.collect()).contains(
          "decode_image: spark.petastorm.maxImagePixels = 'lots': expected a positive whole number of pixels"))
      }
    }
  }

  test("load_image refuses a file longer than spark.petastorm.maxCellBytes from its length, before reading it") {
    // A sparse file: none of its bytes is written, and none may be read.
    val file = tempDir("petastorm-long").resolve("long.png")
    val long = file.toUri.toString
    def withLength[T](length: Long, limit: Option[String])(body: => T): T = {
      val raf = new RandomAccessFile(file.toFile, "rw")
      try raf.setLength(length) finally raf.close()
      limit.foreach(spark.conf.set(DecodeLimits.MaxCellBytesConf, _))
      try body finally spark.conf.unset(DecodeLimits.MaxCellBytesConf)
    }
    def error = failure(Seq(long).toDF("p").select(load_image($"p")).collect())
    val hint = "raise it with the read option maxCellBytes or the session conf spark.petastorm.maxCellBytes if the " +
      "data really needs it"
    withOnError("fail") {
      withLength(5000, Some("4096")) {
        assert(error.contains(s"load_image: cannot decode '$long': the file '$long' has a length of 5,000 bytes, " +
          s"over the limit of 4,096 (maxCellBytes); $hint"), error)
      }
      withLength(3L << 30, None) {
        assert(error.contains(s"the file '$long' has a length of 3,221,225,472 bytes, over the limit of " +
          s"536,870,912 (maxCellBytes); $hint"), error)
      }
      // Over 2 GiB a file is refused whatever the limit: no array holds it.
      withLength(3L << 30, Some(Long.MaxValue.toString)) {
        assert(error.contains(s"the file '$long' has a length of 3221225472 bytes, over the 2147483639 bytes an " +
          "image file may have"), error)
      }
    }
    val before = ImageFailures.count(spark)
    withLength(5000, Some("4096")) {
      assert(first(Seq(long).toDF("p").select(load_image($"p"))) == null && ImageFailures.count(spark) - before == 1)
    }
  }
}
