package org.petastorm.spark.datasource

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.types._
import org.apache.spark.sql.util.CaseInsensitiveStringMap
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.format.FieldCodec
import org.petastorm.spark.tensor.{DType, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

/** PetastormOptions: the names, defaults and parsing of the read and write options. */
class PetastormOptionsSuite extends AnyFunSuite {
  private def error(body: => Any): String = intercept[IllegalArgumentException](body).getMessage

  test("the option names") {
    import PetastormOptions._
    assert(Seq(Path, Decode, SchemaFields, MaxCellBytes, MaxImagePixels, RowGroupSizeMB, Codec, Shape, DTypeOption) ==
      Seq("path", "decode", "schemaFields", "maxCellBytes", "maxImagePixels", "rowGroupSizeMB", "codec", "shape", "dtype"))
  }

  test("read options maxCellBytes and maxImagePixels: positive whole numbers, else the defaults given") {
    val options = PetastormReadOptions(Map("MAXCELLBYTES" -> "1024", "maxImagePixels" -> " 100 "))
    assert(options.maxCellBytes.contains(1024L) && options.maxImagePixels.contains(100L))
    assert(options.decodeLimits(DecodeLimits.Default) == DecodeLimits(1024, 100))
    val defaults = DecodeLimits(maxCellBytes = 5000, maxImagePixels = 600)
    assert(PetastormReadOptions(Map("maxImagePixels" -> "7")).decodeLimits(defaults) == DecodeLimits(5000, 7))
    assert(PetastormReadOptions(Map.empty[String, String]).decodeLimits(DecodeLimits.Default) ==
      DecodeLimits(512L * 1024 * 1024, 89478485L))
    for (bad <- Seq("0", "-5", "1.5", "512m", "")) {
      assert(error(PetastormReadOptions(Map("maxCellBytes" -> bad))) ==
        s"Option maxCellBytes = '$bad': expected a positive whole number of bytes")
    }
    assert(error(PetastormReadOptions(Map("maxImagePixels" -> "many"))) ==
      "Option maxImagePixels = 'many': expected a positive whole number of pixels")
  }

  test("read options: defaults, names in any case, from either kind of options map") {
    assert(PetastormReadOptions(Map.empty[String, String]) == PetastormReadOptions(None, decode = true, None))
    val options = Map("PATH" -> "/data", "Decode" -> "FALSE", "schemafields" -> "id, x_.*")
    val expected = PetastormReadOptions(Some("/data"), decode = false, Some("id, x_.*"))
    assert(PetastormReadOptions(options) == expected)
    assert(PetastormReadOptions(new CaseInsensitiveStringMap(options.asJava)) == expected)
    assert(PetastormReadOptions(Map("decode" -> "True")).decode)
    assert(error(PetastormReadOptions(Map("decode" -> "yes"))) == "Option decode = 'yes': expected true or false")
  }

  test("schemaFields keeps the columns it names or fully matches, in schema order") {
    val schema = StructType(Seq("id", "x_1", "x_2", "xy").map(StructField(_, IntegerType)))
    assert(PetastormReadOptions(None, decode = true, None).selectFields(schema) == schema)
    assert(PetastormReadOptions(None, true, Some("x_.*, id,")).selectFields(schema).fieldNames.toSeq == Seq("id", "x_1", "x_2"))
    assert(error(PetastormReadOptions(None, true, Some("x")).selectFields(schema)) ==
      "schemaFields 'x' matches none of id, x_1, x_2, xy")
  }

  test("write options: path, the row-group size in bytes, and only the per-column options kept for the executors") {
    val options = PetastormWriteOptions(Map("path" -> "/out", "ROWGROUPSIZEMB" -> "0.5", "compression" -> "zstd",
      "codec.img" -> "png", "Shape.A" -> "2,2", "DTYPE.a" -> "int8", "codecs" -> "x"))
    assert(options.path.contains("/out") && options.rowGroupSizeMB.contains(0.5))
    assert(options.rowGroupBytes.contains(524288L))
    assert(options.columns.raw == Map("codec.img" -> "png", "Shape.A" -> "2,2", "DTYPE.a" -> "int8"))
    assert(PetastormWriteOptions(Map.empty[String, String]) == PetastormWriteOptions(None, None, ColumnWriteOptions(Map.empty)))
    assert(PetastormWriteOptions(Map("rowGroupSizeMB" -> "32")).rowGroupBytes.contains(32L * 1024 * 1024))
    assert(error(PetastormWriteOptions(Map("rowGroupSizeMB" -> "big"))) ==
      "Option rowGroupSizeMB = 'big': expected a number of megabytes such as 32 or 0.5")
  }

  test("per-column options: found whatever the case of option and column, parsed with errors naming the option") {
    val columns = ColumnWriteOptions(Map("CODEC.Img" -> " JPEG:90 ", "shape.a" -> "2, -1 ,3", "dtype.a" -> "<u2"))
    assert(columns.codecText("img").contains(" JPEG:90 ") && columns.imageCodec("img") && !columns.imageCodec("a"))
    assert(columns.codec("img") == FieldCodec.Image("jpeg", 90) && columns.codec("other") == FieldCodec.Ndarray)
    assert(columns.hasShape("A") && columns.shape("A").contains(Seq(2, -1, 3)) && columns.shape("img").isEmpty)
    assert(columns.dtype("a").contains(DType.UInt16) && columns.dtype("img").isEmpty)
  }

  test("codec values and their errors") {
    import PetastormOptions.parseCodec
    assert(parseCodec("c", "ndarray") == FieldCodec.Ndarray)
    assert(parseCodec("c", "Compressed_Ndarray") == FieldCodec.CompressedNdarray)
    assert(parseCodec("c", "png") == FieldCodec.Image("png", 80))
    assert(parseCodec("c", "jpg") == FieldCodec.Image("jpeg", 80))
    assert(parseCodec("c", "jpeg:100") == FieldCodec.Image("jpeg", 100))
    Seq("webp", "jpeg:101", "jpeg:q", "png:80", "ndarray:1").foreach { text =>
      assert(error(parseCodec("c", text)) ==
        s"Option codec.c = '$text': expected ndarray, compressed_ndarray, png or jpeg[:quality]", text)
    }
  }

  test("shape and dtype values and their errors") {
    import PetastormOptions.{parseDType, parseShape}
    assert(parseShape("s", "32,32,3") == Seq(32, 32, 3) && parseShape("s", "") == Nil)
    Seq("2,x", "2,-2", "1.5").foreach { text =>
      assert(error(parseShape("s", text)) ==
        s"Option shape.s = '$text': expected comma-separated dimensions such as '32,32,3'", text)
    }
    assert(parseDType("d", "float") == DType.Float32)
    assert(error(parseDType("d", "complex64")).startsWith("Option dtype.d = 'complex64': Unknown tensor dtype 'complex64'"))
  }

  test("the write plan parses a column's options only where the column takes them") {
    val schema = StructType(Seq(StructField("n", IntegerType), StructField("a", ArrayType(DoubleType)),
      StructField("t", TensorUDT())))
    // shape and dtype of a scalar column are not read; neither is a codec for a column that is not there.
    val plan = WritePlan(schema, ColumnWriteOptions(Map("shape.n" -> "bad", "dtype.n" -> "bad", "codec.gone" -> "bad")))
    assert(plan.columns.map(_.tensor.isDefined) == Seq(false, false, true))
    assert(error(WritePlan(schema, ColumnWriteOptions(Map("codec.n" -> "png")))) == "Column 'n' of type int cannot " +
      "take codec 'png': codecs apply to tensor, vector and shaped array columns")
    assert(error(WritePlan(schema, ColumnWriteOptions(Map("shape.a" -> "2", "dtype.a" -> "x")))).startsWith(
      "Option dtype.a = 'x': Unknown tensor dtype 'x'"))
    val shaped = WritePlan(schema, ColumnWriteOptions(Map("shape.a" -> "2,-1", "codec.t" -> "compressed_ndarray")))
    assert(shaped.columns(1).tensor == Some(TensorSource.ArrayColumn(DoubleType, DType.Float64, Seq(2, -1)) -> FieldCodec.Ndarray))
    assert(shaped.columns(2).tensor == Some(TensorSource.TensorColumn -> FieldCodec.CompressedNdarray))
    val empty = WritePlan(schema, ColumnWriteOptions(Map("dtype.t" -> "uint8"))).unischema("S", Map.empty)
    assert(empty.field("t").map(_.dtype).contains("uint8"))
  }

  test("the write plan's column options travel through the job configuration unchanged") {
    val schema = StructType(Seq(StructField("t", TensorUDT())))
    val plan = WritePlan(schema, ColumnWriteOptions(Map("Codec.T" -> "png")))
    val conf = new org.apache.hadoop.conf.Configuration(false)
    plan.toConf(conf)
    assert(WritePlan.fromConf(conf) == plan)
  }
}
