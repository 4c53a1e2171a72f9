package org.petastorm.spark.ingest

import java.nio.file.{Files, Path}

import org.apache.hadoop.fs.FileAlreadyExistsException
import org.apache.spark.sql.Row
import org.apache.spark.sql.types.{IntegerType, StringType}
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.codec.ImageCodec
import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

class ImageIngestSuite extends AnyFunSuite with LocalSpark {
  private def csv(lines: String*): String = {
    val file = tempDir("labels").resolve("labels.csv")
    Files.write(file, lines.mkString("", "\n", "\n").getBytes("UTF-8"))
    file.toString
  }

  private lazy val images: Path = {
    val dir = tempDir("images")
    Seq("a.png", "b.png", "c.png").zipWithIndex.foreach { case (name, i) =>
      val pixels = Tensor(DType.UInt8, Seq(2, 2, 3), Array.fill(12)(i.toByte))
      Files.write(dir.resolve(name), ImageCodec.encode(pixels, "png"))
    }
    dir
  }

  test("string labels: label keeps the text, label_index is the position in the sorted distinct labels") {
    // ANSI mode (Spark 4's default) must not turn 'dog' into a CAST_INVALID_INPUT error.
    spark.conf.set("spark.sql.ansi.enabled", "true")
    try {
      val df = ImageIngest.readLabels(spark, csv("filename,label", "a.png,dog", "b.png,cat", "c.png, dog", "d.png,7"))
      assert(df.schema("label").dataType == StringType && df.schema("label_index").dataType == IntegerType)
      assert(df.orderBy("filename").collect().toSeq == Seq(
        Row("a.png", "dog", 2), Row("b.png", "cat", 1), Row("c.png", "dog", 2), Row("d.png", "7", 0)))
    } finally spark.conf.unset("spark.sql.ansi.enabled")
  }

  test("integer labels stay one integer label column; decimals and huge numbers are not integers") {
    val ints = ImageIngest.readLabels(spark, csv("a.png,3", "b.png,-1", "c.png,+12"))
    assert(ints.columns.toSeq == Seq("filename", "label") && ints.schema("label").dataType == IntegerType)
    assert(ints.orderBy("filename").collect().toSeq == Seq(Row("a.png", 3), Row("b.png", -1), Row("c.png", 12)))
    for (other <- Seq("1.5", "99999999999")) {
      val df = ImageIngest.readLabels(spark, csv("a.png,1", s"b.png,$other"))
      assert(df.schema("label").dataType == StringType && df.columns.contains("label_index"), other)
    }
  }

  test("run writes string labels with label_index, and refuses an existing output naming it and the modes") {
    val out = tempDir("ingested").resolve("data").toString
    val result = ImageIngest.run(spark, csv("a.png,dog", "b.png,cat", "c.png,dog"), images.toString, out, None,
      "png", "errorifexists")
    assert(result.rows == 3 && result.failedImages == 0)
    val back = spark.read.format("petastorm").load(out).select("filename", "label", "label_index").orderBy("filename")
    assert(back.collect().toSeq == Seq(Row("a.png", "dog", 1), Row("b.png", "cat", 0), Row("c.png", "dog", 1)))
    val e = intercept[FileAlreadyExistsException](
      ImageIngest.run(spark, csv("a.png,dog"), images.toString, out, None, "png", "errorifexists"))
    assert(e.getMessage ==
      s"ingest: output $out already exists; use mode 'overwrite' to replace it or 'append' to add to it")
    assert(ImageIngest.run(spark, csv("a.png,dog"), images.toString, out, None, "png", "overwrite").rows == 1)
    val appended = ImageIngest.run(spark, csv("b.png,cat", "c.png,dog"), images.toString, out, None, "png", "Append")
    assert(appended.rows == 2, "an append counts its own rows, not the dataset's")
    assert(spark.read.format("petastorm").load(out).count() == 3)
    assert(ImageIngest.run(spark, csv("a.png,dog"), images.toString, out, None, "png", " IGNORE").rows == 0)
    assert(spark.read.format("petastorm").load(out).count() == 3, "ignore leaves an existing output as it is")
    val empty = tempDir("empty-output").toString // exists and holds no data file: an append has no rows to count
    assert(ImageIngest.run(spark, csv("a.png,dog", "b.png,cat"), images.toString, empty, None, "png", "append").rows == 2)
  }
}
