package org.petastorm.spark.format

import org.apache.spark.sql.types.DataType
import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, parse, render}

/** How a field's values are stored in Parquet (Petastorm's codecs). */
sealed trait FieldCodec
object FieldCodec {
  /** A native Parquet value of a Spark type. */
  final case class Scalar(sparkType: DataType) extends FieldCodec
  /** `np.save` bytes. */
  case object Ndarray extends FieldCodec
  /** `np.savez_compressed` bytes (member `arr`). */
  case object CompressedNdarray extends FieldCodec
  /** A PNG or JPEG file. */
  final case class Image(format: String, quality: Int) extends FieldCodec
}

/**
 * One field of a Petastorm dataset: name, numpy element type (`int32`, `float32`, `string`, `bytes`, `decimal`,
 * ...), shape (None for a variable dimension), codec (None: a plain Parquet value) and nullability.
 */
final case class UnischemaField(name: String, dtype: String, shape: Seq[Option[Int]], codec: Option[FieldCodec],
                                nullable: Boolean) {
  /** Stored as encoded bytes that decode to an n-dimensional array. */
  def isEncodedArray: Boolean = codec.exists {
    case FieldCodec.Ndarray | FieldCodec.CompressedNdarray | _: FieldCodec.Image => true
    case _ => false
  }

  /** An encoded array of strings or bytes (not a numeric tensor). */
  def isTextArray: Boolean = isEncodedArray && (dtype == "string" || dtype == "bytes")
}

/** A dataset's schema, as recorded in its `_common_metadata`. */
final case class Unischema(name: String, fields: Seq[UnischemaField]) {
  def field(name: String): Option[UnischemaField] = fields.find(_.name == name)

  /** The language-neutral JSON document (`petastorm.unischema.json.v1`, described in docs/format.md). */
  def toJson: String = {
    def codecJson(codec: Option[FieldCodec]): JValue = codec match {
      case None => JNull
      case Some(FieldCodec.Scalar(t)) => JObject("type" -> JString("scalar"), "spark_type" -> parse(t.json))
      case Some(FieldCodec.Ndarray) => JObject("type" -> JString("ndarray"))
      case Some(FieldCodec.CompressedNdarray) => JObject("type" -> JString("compressed_ndarray"))
      case Some(FieldCodec.Image(f, q)) => JObject("type" -> JString("image"), "format" -> JString(f), "quality" -> JInt(q))
    }
    compact(render(JObject(
      "version" -> JInt(Unischema.JsonVersion),
      "name" -> JString(name),
      "fields" -> JArray(fields.toList.map { f =>
        JObject(
          "name" -> JString(f.name),
          "dtype" -> JString(f.dtype),
          "shape" -> JArray(f.shape.toList.map(_.map(d => JInt(d): JValue).getOrElse(JNull))),
          "nullable" -> JBool(f.nullable),
          "codec" -> codecJson(f.codec))
      }))))
  }
}

object Unischema {
  val JsonVersion = 1
  /** Element types a field may declare. */
  val DTypes: Set[String] = Set("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "string", "bytes", "decimal", "datetime64", "timedelta64")

  /** Parses the JSON document; a malformed one is an error that says what is wrong. */
  def fromJson(text: String): Unischema = {
    val doc = try parse(text) catch {
      case e: Exception => throw new IllegalArgumentException(s"Unischema JSON is not valid JSON: ${e.getMessage}")
    }
    doc \ "version" match {
      case JInt(v) if v == JsonVersion =>
      case other => throw new IllegalArgumentException(
        s"Unsupported Unischema JSON version ${compact(render(other))} (this release reads version $JsonVersion)")
    }
    val name = doc \ "name" match {
      case JString(s) => s
      case _ => throw new IllegalArgumentException("Unischema JSON needs a string 'name'")
    }
    val fields = doc \ "fields" match {
      case JArray(items) => items.map(fieldFromJson)
      case _ => throw new IllegalArgumentException("Unischema JSON needs a list 'fields'")
    }
    Unischema(name, fields)
  }

  private def fieldFromJson(item: JValue): UnischemaField = {
    val name = item \ "name" match {
      case JString(s) => s
      case other => throw new IllegalArgumentException(s"A Unischema field needs a string name, got ${compact(render(other))}")
    }
    def bad(what: String) = throw new IllegalArgumentException(s"Field '$name': $what")
    val dtype = item \ "dtype" match {
      case JString(s) if DTypes.contains(s) => s
      case other => bad(s"unknown dtype ${compact(render(other))} (known: ${DTypes.toSeq.sorted.mkString(", ")})")
    }
    val shape = item \ "shape" match {
      case JArray(dims) => dims.map {
        case JNull => None
        case JInt(d) if d >= 0 && d <= Int.MaxValue => Some(d.toInt) // never read modulo 2^32
        case other => bad(s"shape dimensions must be integers from 0 to ${Int.MaxValue} or null, got " +
          compact(render(other)))
      }
      case other => bad(s"shape must be a list, got ${compact(render(other))}")
    }
    val nullable = item \ "nullable" match {
      case JBool(b) => b
      case other => bad(s"nullable must be true or false, got ${compact(render(other))}")
    }
    val codec = item \ "codec" match {
      case JNull | JNothing => None
      case c => Some(c \ "type" match {
        case JString("scalar") => FieldCodec.Scalar(DataType.fromJson(compact(render(c \ "spark_type"))))
        case JString("ndarray") => FieldCodec.Ndarray
        case JString("compressed_ndarray") => FieldCodec.CompressedNdarray
        case JString("image") => (c \ "format", c \ "quality") match {
          case (JString(f @ ("png" | "jpeg")), JInt(q)) => FieldCodec.Image(f, q.toInt)
          case _ => bad(s"image codec needs format 'png' or 'jpeg' and an integer quality, got ${compact(render(c))}")
        }
        case _ => bad(s"unknown codec ${compact(render(c))}")
      })
    }
    UnischemaField(name, dtype, shape, codec, nullable)
  }
}
