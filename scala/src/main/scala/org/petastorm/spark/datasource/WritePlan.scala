package org.petastorm.spark.datasource

import org.apache.hadoop.conf.Configuration
import org.apache.spark.sql.types._
import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, parse, render}
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.format.{FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{DType, TensorExpressions, TensorUDT}

// The column plan of a write: which columns become encoded tensors, and the Unischema recorded for them. The rows
// are encoded by RowEncoder; what the writers observed comes back as ColumnStats.

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
 * compressed_ndarray, png, jpeg[:quality]), and the Unischema recorded for them. `stored` is the Unischema of the
 * dataset an append adds to: its fields are what every new row must fit (see [[AppendCheck]]), and it stays the
 * dataset's schema. Rebuilt on the executors from the Hadoop configuration of the write job.
 */
final case class WritePlan(dataSchema: StructType, options: ColumnWriteOptions, stored: Option[Unischema] = None) {
  val columns: Seq[ColumnPlan] = dataSchema.fields.toSeq.map { f =>
    val source: Option[TensorSource] = f.dataType match {
      case _: TensorUDT => Some(TensorSource.TensorColumn)
      case u: UserDefinedType[_] if WritePlan.isVector(u) => Some(TensorSource.VectorColumn)
      case BinaryType if options.imageCodec(f.name) => Some(TensorSource.ImageBytes)
      case ArrayType(e, _) if options.hasShape(f.name) =>
        val dtype = options.dtype(f.name).orElse(TensorExpressions.defaultDType(e)).getOrElse(
          throw new IllegalArgumentException(s"Column '${f.name}': arrays of ${e.simpleString} cannot be tensors"))
        Some(TensorSource.ArrayColumn(e, dtype, options.shape(f.name).get))
      case _ => None
    }
    source match {
      case Some(s) => ColumnPlan(f, Some(s -> options.codec(f.name)))
      case None =>
        options.codecText(f.name).foreach { c =>
          throw new IllegalArgumentException(s"Column '${f.name}' of type ${f.dataType.simpleString} cannot take " +
            s"codec '$c': codecs apply to tensor, vector and shaped array columns")
        }
        WritePlan.fieldDType(f) // fails early, naming the column, for types a Unischema cannot describe
        ColumnPlan(f, None)
    }
  }

  val storageSchema: StructType = StructType(columns.map(_.storage))

  /** The encoder of one writer; image files are checked against `limits` before they are decoded. */
  def encoder(limits: DecodeLimits = DecodeLimits.Default): RowEncoder = new RowEncoder(this, limits)

  /** The Unischema of the written dataset, given what the task writers observed. */
  def unischema(name: String, observed: Map[String, ColumnStats]): Unischema = Unischema(name, columns.map { c =>
    c.tensor match {
      case Some((source, codec)) =>
        val stats = observed.get(c.field.name)
        val dtype = stats.map(_.dtype).orElse(source match {
          case TensorSource.VectorColumn => Some("float64")
          case TensorSource.ArrayColumn(_, d, _) => Some(d.name)
          case TensorSource.TensorColumn => options.dtype(c.field.name).map(_.name)
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

  /** The stored field a new value of column `name` must fit (appends only). */
  def storedField(name: String): Option[UnischemaField] = stored.flatMap(_.field(name))

  def toConf(conf: Configuration): Unit = {
    conf.set(WritePlan.SchemaKey, dataSchema.json)
    conf.set(WritePlan.OptionsKey, compact(render(JObject(options.raw.toList.map { case (k, v) => k -> JString(v) }))))
    stored.foreach(s => conf.set(WritePlan.StoredKey, s.toJson))
  }
}

object WritePlan {
  val SchemaKey = "petastorm.write.schema"
  /** The per-column write options, as a JSON object. */
  val OptionsKey = "petastorm.write.options"
  /** The Unischema of the dataset an append adds to, as JSON (absent for other writes). */
  val StoredKey = "petastorm.write.stored_schema"

  def fromConf(conf: Configuration): WritePlan = {
    val options = parse(conf.get(OptionsKey, "{}")) match {
      case JObject(items) => items.collect { case (k, JString(v)) => k -> v }.toMap
      case _ => Map.empty[String, String]
    }
    WritePlan(DataType.fromJson(conf.get(SchemaKey)).asInstanceOf[StructType], ColumnWriteOptions(options),
      Option(conf.get(StoredKey)).map(Unischema.fromJson))
  }

  def isVector(udt: UserDefinedType[_]): Boolean =
    Set("org.apache.spark.ml.linalg.VectorUDT", "org.apache.spark.mllib.linalg.VectorUDT").contains(udt.getClass.getName)

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
