package org.petastorm.spark.datasource

import java.io.File
import java.nio.{ByteBuffer, ByteOrder}
import java.security.MessageDigest

import org.apache.spark.sql.Row
import org.json4s._
import org.json4s.jackson.JsonMethods.parse
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.tensor.Tensor
import org.scalatest.funsuite.AnyFunSuite

/** Datasets written by Petastorm 0.13.1, read with format("petastorm") and compared with the original's decode. */
class LegacyFixturesSuite extends AnyFunSuite with LocalSpark {
  private val root = new File("tests/data/petastorm-0.13.1")
  private lazy val oracle = parse(new String(java.nio.file.Files.readAllBytes(new File(root, "oracle.json").toPath), "UTF-8"))
  /** JPEG decoders differ by a few levels; exact pixels are compared against the Python reader in pytest. */
  private val lossy = Set("jpeg")

  private def sha256(bytes: Array[Byte]): String = MessageDigest.getInstance("SHA-256").digest(bytes).map(b => f"${b & 0xff}%02x").mkString

  private def pyRepr(bytes: Array[Byte]): String = "b'" + bytes.map { b =>
    val c = b & 0xff
    c match {
      case '\\' => "\\\\"; case '\'' => "\\'"; case '\t' => "\\t"; case '\n' => "\\n"; case '\r' => "\\r"
      case _ if c >= 0x20 && c < 0x7f => c.toChar.toString
      case _ => f"\\x$c%02x"
    }
  }.mkString + "'"

  private def flatten(v: Any): Seq[Any] = v match {
    case s: scala.collection.Seq[_] => s.toSeq.flatMap(flatten)
    case other => Seq(other)
  }

  private def check(dataset: String, field: String, expected: JValue, actual: Any): Unit = {
    def fail(what: String) = throw new AssertionError(s"$dataset.$field: $what (expected $expected, got $actual)")
    expected match {
      case JNull => if (actual != null) fail("expected null")
      case JObject(List(("decimal", JString(d)))) =>
        if (BigDecimal(actual.asInstanceOf[java.math.BigDecimal]) != BigDecimal(d)) fail("decimal differs")
      case o: JObject if (o \ "sha256") != JNothing =>
        val JString(dtype) = o \ "dtype": @unchecked
        val shape = (o \ "shape").asInstanceOf[JArray].arr.map { case JInt(d) => d.toInt; case _ => -1 }
        val JString(sha) = o \ "sha256": @unchecked
        actual match {
          case t: Tensor =>
            if (t.dtype.descr != dtype || t.shape != shape) fail("dtype or shape differs")
            if (!lossy.contains(field) && sha256(t.data) != sha) fail("values differ")
          case ints: scala.collection.Seq[_] => // a native list column (plain Parquet)
            val buf = ByteBuffer.allocate(4 * ints.length).order(ByteOrder.LITTLE_ENDIAN)
            ints.foreach(i => buf.putInt(i.asInstanceOf[Int]))
            if (sha256(buf.array()) != sha) fail("values differ")
          case _ => fail("not a tensor")
        }
      case o: JObject =>
        val JString(kind) = o \ "dtype": @unchecked
        val values = (o \ "values").asInstanceOf[JArray].arr.map { case JString(s) => s; case other => other.toString }
        val got = flatten(actual).map {
          case b: Array[Byte] => pyRepr(b)
          case s => s.toString
        }
        if (got != values) fail(s"$kind values differ: $got")
      case JBool(b) => if (actual != b) fail("differs")
      case JInt(i) => actual match {
        case ts: java.sql.Timestamp =>
          if (BigInt(ts.toInstant.getEpochSecond) * 1000000000L + ts.toInstant.getNano != i) fail("timestamp differs")
        case n: Number => if (BigDecimal(n.toString) != BigDecimal(i)) fail("differs")
        case _ => fail("not a number")
      }
      case JDouble(d) => if (actual.asInstanceOf[Number].doubleValue() != d) fail("differs")
      case JDecimal(d) => if (BigDecimal(actual.toString) != d) fail("differs")
      case JString(s) => if (actual.toString != s) fail("differs")
      case other => fail(s"unexpected oracle value $other")
    }
  }

  Seq("hello_world", "test_schema", "codecs", "plain_scalar").foreach { dataset =>
    test(s"$dataset reads value-exact against the original's decode") {
      val df = spark.read.format("petastorm").load(new File(root, dataset).getAbsolutePath)
      val rows = df.collect().sortBy(_.getAs[Any]("id").toString.toLong)
      val expected = (oracle \ dataset).asInstanceOf[JArray].arr
      assert(rows.length == expected.length)
      rows.zip(expected).foreach { case (row: Row, JObject(fields)) =>
        fields.foreach { case (name, value) => check(dataset, name, value, row.getAs[Any](name)) }
      case (_, other) => fail(s"unexpected oracle row $other")
      }
    }
  }
}
