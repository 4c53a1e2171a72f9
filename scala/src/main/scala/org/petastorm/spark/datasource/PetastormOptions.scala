package org.petastorm.spark.datasource

import scala.jdk.CollectionConverters._

import org.apache.spark.sql.catalyst.util.CaseInsensitiveMap
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.format.FieldCodec
import org.petastorm.spark.tensor.DType

/**
 * The options of the `petastorm` source: every name, default and parser. Read and write options are parsed once,
 * from Spark's case-insensitive options, into [[PetastormReadOptions]] and [[PetastormWriteOptions]]; an invalid
 * value is an IllegalArgumentException naming the option and what it accepts. Spark's Parquet options
 * (compression, mergeSchema, ...) are not read here: they pass through to Spark's Parquet source.
 */
object PetastormOptions {
  /** The dataset's folder (FileFormat only: a DataSource V2 table gets its paths apart from its options). */
  val Path = "path"
  /** Read: `false` keeps encoded cells as the stored binary. Default true. */
  val Decode = "decode"
  /** Read: comma-separated column names or full-match regexes of the columns to read. Default: all. */
  val SchemaFields = "schemaFields"
  /**
   * Read: the most bytes an array cell may decode to, from its header (NPY shape x item size; a compressed
   * ndarray's `arr.npy` member size). Default: the session conf `spark.petastorm.maxCellBytes`, else 512 MiB.
   */
  val MaxCellBytes: String = DecodeLimits.MaxCellBytes
  /**
   * Read: the most pixels (width x height, from the header) an image cell may have. Default: the session conf
   * `spark.petastorm.maxImagePixels`, else 89,478,485 (Pillow's limit).
   */
  val MaxImagePixels: String = DecodeLimits.MaxImagePixels
  /** Write: Parquet row-group size in megabytes (`parquet.block.size`). Default: Parquet's. */
  val RowGroupSizeMB = "rowGroupSizeMB"
  /** Write, per column (`codec.<col>`): ndarray (the default), compressed_ndarray, png or jpeg[:quality]. */
  val Codec = "codec"
  /** Write, per column (`shape.<col>`): the tensor shape of a numeric array column, such as `32,32,3`. */
  val Shape = "shape"
  /** Write, per column (`dtype.<col>`): the element type of a shaped array column or of an empty tensor column. */
  val DTypeOption = "dtype"
  val DefaultCodec = "ndarray"
  /** The per-column options: the only options that travel to the executors. */
  val PerColumn: Seq[String] = Seq(Codec, Shape, DTypeOption)

  private val ImageCodecs = Seq("png", "jpeg", "jpg")

  def parseBoolean(name: String, text: String): Boolean =
    if (text.equalsIgnoreCase("true")) true
    else if (text.equalsIgnoreCase("false")) false
    else throw new IllegalArgumentException(s"Option $name = '$text': expected true or false")

  def parseMegabytes(name: String, text: String): Double =
    try text.toDouble catch {
      case e: NumberFormatException =>
        throw new IllegalArgumentException(s"Option $name = '$text': expected a number of megabytes such as 32 or 0.5", e)
    }

  def parseLimit(name: String, text: String, unit: String): Long = DecodeLimits.parseLimit(text).getOrElse(
    throw new IllegalArgumentException(s"Option $name = '$text': expected a positive whole number of $unit"))

  def parseShape(column: String, text: String): Seq[Int] = {
    val dims = text.split(",").map(_.trim).filter(_.nonEmpty).toSeq
    val parsed = dims.map(d => scala.util.Try(d.toInt).toOption.filter(_ >= -1))
    if (parsed.exists(_.isEmpty)) {
      throw new IllegalArgumentException(s"Option $Shape.$column = '$text': expected comma-separated dimensions such as '32,32,3'")
    }
    parsed.flatten
  }

  def parseCodec(column: String, text: String): FieldCodec = text.trim.toLowerCase.split(":") match {
    case Array("ndarray") => FieldCodec.Ndarray
    case Array("compressed_ndarray") => FieldCodec.CompressedNdarray
    case Array("png") => FieldCodec.Image("png", 80)
    case Array("jpeg" | "jpg") => FieldCodec.Image("jpeg", 80)
    case Array("jpeg" | "jpg", q) if q.forall(_.isDigit) && q.nonEmpty && q.toInt <= 100 => FieldCodec.Image("jpeg", q.toInt)
    case _ => throw new IllegalArgumentException(
      s"Option $Codec.$column = '$text': expected ndarray, compressed_ndarray, png or jpeg[:quality]")
  }

  /** An image codec (png, jpeg, jpg, with or without a quality), which a binary column of image files may take. */
  def isImageCodec(text: String): Boolean = ImageCodecs.contains(text.trim.toLowerCase.split(":").head)

  def parseDType(column: String, text: String): DType =
    try DType(text) catch {
      case e: IllegalArgumentException =>
        throw new IllegalArgumentException(s"Option $DTypeOption.$column = '$text': ${e.getMessage}", e)
    }
}

/** The read options, parsed. `path`: see [[PetastormOptions.Path]]; a limit not given is None. */
final case class PetastormReadOptions(path: Option[String], decode: Boolean, schemaFields: Option[String],
                                      maxCellBytes: Option[Long] = None, maxImagePixels: Option[Long] = None) {
  /** The decode limits: the options given, else `defaults` (the session's, see [[DecodeLimits.fromConf]]). */
  def decodeLimits(defaults: DecodeLimits): DecodeLimits =
    DecodeLimits(maxCellBytes.getOrElse(defaults.maxCellBytes), maxImagePixels.getOrElse(defaults.maxImagePixels))

  /** The columns of `schema` that `schemaFields` names (all of them without the option). */
  def selectFields(schema: StructType): StructType = schemaFields match {
    case None => schema
    case Some(spec) =>
      val patterns = spec.split(",").map(_.trim).filter(_.nonEmpty).map(_.r)
      val kept = schema.fields.filter(f => patterns.exists(_.pattern.matcher(f.name).matches()))
      if (kept.isEmpty) {
        throw new IllegalArgumentException(s"schemaFields '$spec' matches none of ${schema.fieldNames.mkString(", ")}")
      }
      StructType(kept)
  }
}

object PetastormReadOptions {
  import PetastormOptions._

  def apply(options: Map[String, String]): PetastormReadOptions = {
    val map = CaseInsensitiveMap(options)
    PetastormReadOptions(map.get(Path), map.get(Decode).forall(parseBoolean(Decode, _)), map.get(SchemaFields),
      map.get(MaxCellBytes).map(parseLimit(MaxCellBytes, _, "bytes")),
      map.get(MaxImagePixels).map(parseLimit(MaxImagePixels, _, "pixels")))
  }

  def apply(options: CaseInsensitiveStringMap): PetastormReadOptions = apply(options.asCaseSensitiveMap.asScala.toMap)
}

/** The write options, parsed; the per-column ones are parsed for the columns that take them (see [[WritePlan]]). */
final case class PetastormWriteOptions(path: Option[String], rowGroupSizeMB: Option[Double], columns: ColumnWriteOptions) {
  /** The row-group size in bytes, as Parquet's `parquet.block.size` takes it. */
  def rowGroupBytes: Option[Long] = rowGroupSizeMB.map(mb => (mb * 1024 * 1024).toLong)
}

object PetastormWriteOptions {
  import PetastormOptions._

  def apply(options: Map[String, String]): PetastormWriteOptions = {
    val map = CaseInsensitiveMap(options)
    PetastormWriteOptions(map.get(Path), map.get(RowGroupSizeMB).map(parseMegabytes(RowGroupSizeMB, _)),
      ColumnWriteOptions.from(options))
  }
}

/**
 * The per-column write options (`codec.<col>`, `shape.<col>`, `dtype.<col>`) as given, since they travel to the
 * executors with the write plan; each is parsed for the column it names, so an option for a column that does not
 * take it is ignored, as before.
 */
final case class ColumnWriteOptions(raw: Map[String, String]) {
  import PetastormOptions._

  private def text(option: String, column: String): Option[String] =
    raw.collectFirst { case (k, v) if k.equalsIgnoreCase(s"$option.$column") => v }

  /** `codec.<col>` as given. */
  def codecText(column: String): Option[String] = text(Codec, column)
  def codec(column: String): FieldCodec = parseCodec(column, codecText(column).getOrElse(DefaultCodec))
  /** True when `codec.<col>` names an image codec. */
  def imageCodec(column: String): Boolean = codecText(column).exists(isImageCodec)
  def hasShape(column: String): Boolean = text(Shape, column).isDefined
  def shape(column: String): Option[Seq[Int]] = text(Shape, column).map(parseShape(column, _))
  def dtype(column: String): Option[DType] = text(DTypeOption, column).map(parseDType(column, _))
}

object ColumnWriteOptions {
  /** The per-column options among all the write options. */
  def from(options: Map[String, String]): ColumnWriteOptions = ColumnWriteOptions(options.filter { case (k, _) =>
    PetastormOptions.PerColumn.exists(p => k.toLowerCase.startsWith(p + "."))
  })
}
