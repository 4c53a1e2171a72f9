package org.petastorm.spark.datasource

import org.apache.hadoop.conf.Configuration
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.apache.spark.sql.types._
import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, parse, render}
import org.petastorm.spark.codec.{ImageCodec, Npy, Npz}
import org.petastorm.spark.format.{FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{DType, Tensor, TensorExpressions, TensorUDT}

/** Where a tensor column's values come from. */
sealed trait TensorSource
object TensorSource {
  case object TensorColumn extends TensorSource
  case object VectorColumn extends TensorSource
  final case class ArrayColumn(elementType: DataType, dtype: DType, shape: Seq[Int]) extends TensorSource
  /** A binary column of PNG or JPEG files, stored as they are (checked against the column's image codec). */
  case object ImageBytes extends TensorSource
}

/** One column to write: either a tensor stored with a Petastorm codec, or a value Parquet stores natively. */
final case class ColumnPlan(field: StructField, tensor: Option[(TensorSource, FieldCodec)]) {
  def storage: StructField = if (tensor.isDefined) StructField(field.name, BinaryType, field.nullable) else field
}

/**
 * How a DataFrame is written as a Petastorm dataset: which columns become encoded tensors (TensorUDT, Spark ML
 * vectors, and arrays given a shape with `shape.<col>`), with which codec (`codec.<col>`: ndarray (default),
 * compressed_ndarray, png, jpeg[:quality]), and the Unischema recorded for them. Rebuilt on the executors from the
 * Hadoop configuration of the write job.
 */
final case class WritePlan(dataSchema: StructType, options: Map[String, String]) {
  private def option(kind: String, column: String): Option[String] =
    options.collectFirst { case (k, v) if k.equalsIgnoreCase(s"$kind.$column") => v }

  val columns: Seq[ColumnPlan] = dataSchema.fields.toSeq.map { f =>
    val source: Option[TensorSource] = f.dataType match {
      case _: TensorUDT => Some(TensorSource.TensorColumn)
      case u: UserDefinedType[_] if WritePlan.isVector(u) => Some(TensorSource.VectorColumn)
      case BinaryType if option("codec", f.name).exists(c => Seq("png", "jpeg", "jpg").contains(c.trim.toLowerCase.split(":").head)) =>
        Some(TensorSource.ImageBytes)
      case ArrayType(e, _) if option("shape", f.name).isDefined =>
        val dtype = option("dtype", f.name).map(DType(_)).orElse(TensorExpressions.defaultDType(e)).getOrElse(
          throw new IllegalArgumentException(s"Column '${f.name}': arrays of ${e.simpleString} cannot be tensors"))
        Some(TensorSource.ArrayColumn(e, dtype, WritePlan.parseShape(f.name, option("shape", f.name).get)))
      case _ => None
    }
    source match {
      case Some(s) => ColumnPlan(f, Some(s -> WritePlan.parseCodec(f.name, option("codec", f.name).getOrElse("ndarray"))))
      case None =>
        option("codec", f.name).foreach { c =>
          throw new IllegalArgumentException(s"Column '${f.name}' of type ${f.dataType.simpleString} cannot take " +
            s"codec '$c': codecs apply to tensor, vector and shaped array columns")
        }
        WritePlan.fieldDType(f) // fails early, naming the column, for types a Unischema cannot describe
        ColumnPlan(f, None)
    }
  }

  val storageSchema: StructType = StructType(columns.map(_.storage))

  def encoder(): RowEncoder = new RowEncoder(this)

  /** The Unischema of the written dataset, given what the task writers observed. */
  def unischema(name: String, observed: Map[String, ColumnStats]): Unischema = Unischema(name, columns.map { c =>
    c.tensor match {
      case Some((source, codec)) =>
        val stats = observed.get(c.field.name)
        val dtype = stats.map(_.dtype).orElse(source match {
          case TensorSource.VectorColumn => Some("float64")
          case TensorSource.ArrayColumn(_, d, _) => Some(d.name)
          case TensorSource.TensorColumn => option("dtype", c.field.name).map(DType(_).name)
          case TensorSource.ImageBytes => Some("uint8")
        }).getOrElse("float32")
        val shape = stats.map(_.shape).getOrElse(source match {
          case TensorSource.ArrayColumn(_, _, s) => s.map(Some(_))
          case TensorSource.ImageBytes => Seq(None, None, None)
          case _ => Seq(None)
        })
        UnischemaField(c.field.name, dtype, shape, Some(codec), c.field.nullable)
      case None =>
        val (dtype, shape) = WritePlan.fieldDType(c.field)
        val codec = if (shape.isEmpty) Some(FieldCodec.Scalar(c.field.dataType)) else None
        UnischemaField(c.field.name, dtype, shape, codec, c.field.nullable)
    }
  })

  def toConf(conf: Configuration): Unit = {
    conf.set(WritePlan.SchemaKey, dataSchema.json)
    conf.set(WritePlan.OptionsKey, compact(render(JObject(options.toList.map { case (k, v) => k -> JString(v) }))))
  }
}

object WritePlan {
  val SchemaKey = "petastorm.write.schema"
  val OptionsKey = "petastorm.write.options"
  /** Footer key where each written file records the dtype and shapes its tensor columns held. */
  val StatsKey = "petastorm.write.column_stats.v1"

  def fromConf(conf: Configuration): WritePlan = {
    val options = parse(conf.get(OptionsKey, "{}")) match {
      case JObject(items) => items.collect { case (k, JString(v)) => k -> v }.toMap
      case _ => Map.empty[String, String]
    }
    WritePlan(DataType.fromJson(conf.get(SchemaKey)).asInstanceOf[StructType], options)
  }

  /** Only the options that shape how columns are written travel to the executors. */
  def relevantOptions(options: Map[String, String]): Map[String, String] =
    options.filter { case (k, _) => Seq("codec.", "shape.", "dtype.").exists(p => k.toLowerCase.startsWith(p)) }

  def isVector(udt: UserDefinedType[_]): Boolean =
    Set("org.apache.spark.ml.linalg.VectorUDT", "org.apache.spark.mllib.linalg.VectorUDT").contains(udt.getClass.getName)

  def parseShape(column: String, text: String): Seq[Int] = {
    val dims = text.split(",").map(_.trim).filter(_.nonEmpty).toSeq
    val parsed = dims.map(d => scala.util.Try(d.toInt).toOption.filter(_ >= -1))
    if (parsed.exists(_.isEmpty)) {
      throw new IllegalArgumentException(s"Option shape.$column = '$text': expected comma-separated dimensions such as '32,32,3'")
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
      s"Option codec.$column = '$text': expected ndarray, compressed_ndarray, png or jpeg[:quality]")
  }

  /** The Unischema dtype and shape of a natively stored column. */
  def fieldDType(f: StructField): (String, Seq[Option[Int]]) = {
    def scalar(t: DataType): Option[String] = t match {
      case BooleanType => Some("bool")
      case ByteType => Some("int8")
      case ShortType => Some("int16")
      case IntegerType => Some("int32")
      case LongType => Some("int64")
      case FloatType => Some("float32")
      case DoubleType => Some("float64")
      case StringType => Some("string")
      case BinaryType => Some("bytes")
      case _: DecimalType => Some("decimal")
      case DateType | TimestampType | TimestampNTZType => Some("datetime64")
      case _ => None
    }
    def describe(t: DataType, depth: Int): Option[(String, Seq[Option[Int]])] = t match {
      case ArrayType(e, _) => describe(e, depth + 1)
      case other => scalar(other).map(_ -> Seq.fill(depth)(None))
    }
    describe(f.dataType, 0).getOrElse(throw new IllegalArgumentException(
      s"Column '${f.name}' of type ${f.dataType.simpleString} has no Petastorm field type: convert it (for example " +
        "with to_json) or drop it"))
  }
}

/** What one writer saw in a tensor column: its dtype and, per dimension, the size if every row agreed. */
final case class ColumnStats(dtype: String, shape: Seq[Option[Int]]) {
  def merge(column: String, other: ColumnStats): ColumnStats = {
    if (dtype != other.dtype) {
      throw new IllegalArgumentException(s"Column '$column' holds both ${dtype} and ${other.dtype} tensors; " +
        "a Petastorm field has one dtype")
    }
    if (shape.length != other.shape.length) {
      throw new IllegalArgumentException(s"Column '$column' holds tensors of rank ${shape.length} and " +
        s"${other.shape.length}; a Petastorm field has one rank")
    }
    ColumnStats(dtype, shape.zip(other.shape).map { case (a, b) => if (a == b) a else None })
  }
}

object ColumnStats {
  def of(t: Tensor): ColumnStats = ColumnStats(t.dtype.name, t.shape.map(Some(_)))

  def toJson(stats: Map[String, ColumnStats]): String = compact(render(JObject(stats.toList.map { case (c, s) =>
    c -> (JObject("dtype" -> JString(s.dtype), "shape" -> JArray(s.shape.toList.map(_.fold[JValue](JNull)(JInt(_))))): JValue)
  })))

  def fromJson(text: String): Map[String, ColumnStats] = parse(text) match {
    case JObject(items) => items.collect { case (c, o: JObject) =>
      val dtype = (o \ "dtype") match { case JString(d) => d; case _ => "float32" }
      val shape = (o \ "shape") match {
        case JArray(ds) => ds.map { case JInt(d) => Some(d.toInt); case _ => None }
        case _ => Nil
      }
      c -> ColumnStats(dtype, shape)
    }.toMap
    case _ => Map.empty
  }

  def mergeAll(all: Seq[Map[String, ColumnStats]]): Map[String, ColumnStats] =
    all.foldLeft(Map.empty[String, ColumnStats]) { (acc, m) =>
      m.foldLeft(acc) { case (a, (c, s)) => a.updated(c, a.get(c).map(_.merge(c, s)).getOrElse(s)) }
    }
}

/** Turns rows of the written DataFrame into rows of the storage schema, recording column statistics. */
final class RowEncoder(plan: WritePlan) {
  private val columns = plan.columns.toArray
  private val types = columns.map(_.field.dataType)
  private var stats = Map.empty[String, ColumnStats]

  def statsJson: String = ColumnStats.toJson(stats)

  def encode(row: InternalRow): InternalRow = {
    val out = new Array[Any](columns.length)
    var i = 0
    while (i < columns.length) {
      out(i) = if (row.isNullAt(i)) null else columns(i).tensor match {
        case None => row.get(i, types(i))
        case Some((source, codec)) =>
          val name = columns(i).field.name
          val tensor = try toTensor(source, row, i, codec) catch {
            case e: IllegalArgumentException => throw new IllegalArgumentException(s"Column '$name': ${e.getMessage}", e)
          }
          val seen = ColumnStats.of(tensor)
          stats = stats.updated(name, stats.get(name).map(_.merge(name, seen)).getOrElse(seen))
          if (source == TensorSource.ImageBytes) row.getBinary(i) else encodeTensor(name, tensor, codec)
      }
      i += 1
    }
    new GenericInternalRow(out)
  }

  private def toTensor(source: TensorSource, row: InternalRow, i: Int, codec: FieldCodec): Tensor = source match {
    case TensorSource.TensorColumn => TensorUDT.read(row.getStruct(i, 3))
    case TensorSource.ImageBytes =>
      val bytes = row.getBinary(i)
      val expected = codec.asInstanceOf[FieldCodec.Image].format
      val actual = ImageCodec.formatOf(bytes)
      if (!actual.contains(expected)) {
        throw new IllegalArgumentException(s"codec.$expected expects ${expected.toUpperCase} files, got " +
          actual.map(_.toUpperCase).getOrElse(s"${bytes.length} bytes that are no image"))
      }
      ImageCodec.decode(bytes) // the dtype and shape the Unischema records; the bytes are stored as they are
    case TensorSource.VectorColumn =>
      val v = row.getStruct(i, 4)
      val values = v.getArray(3).toDoubleArray()
      if (v.getByte(0) == 1) Tensor.fromDoubles(Seq(values.length), values)
      else {
        val dense = new Array[Double](v.getInt(1))
        val indices = v.getArray(2).toIntArray()
        indices.indices.foreach(k => dense(indices(k)) = values(k))
        Tensor.fromDoubles(Seq(dense.length), dense)
      }
    case TensorSource.ArrayColumn(elementType, dtype, shape) =>
      val values = row.getArray(i)
      TensorExpressions.fromSparkArray(values, elementType, dtype, Tensor.resolveShape(shape, values.numElements()))
  }

  private def encodeTensor(name: String, t: Tensor, codec: FieldCodec): Array[Byte] = codec match {
    case FieldCodec.Ndarray => Npy.encode(t)
    case FieldCodec.CompressedNdarray => Npz.encode(t)
    case FieldCodec.Image(format, quality) =>
      try ImageCodec.encode(t, format, quality) catch {
        case e: IllegalArgumentException => throw new IllegalArgumentException(s"Column '$name': ${e.getMessage}", e)
      }
    case other => throw new IllegalStateException(s"$other is not a tensor codec")
  }
}
