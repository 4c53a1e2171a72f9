package org.petastorm.spark.datasource

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.apache.spark.sql.catalyst.util.{ArrayData, GenericArrayData}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String
import org.petastorm.spark.codec.{DecodeLimits, ImageCodec, Npy, NpyHeader, NpyHeaderCache, Npz}
import org.petastorm.spark.format.{FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}

/**
 * How a dataset's stored columns become the columns Spark shows: encoded arrays (ndarray, compressed ndarray,
 * png, jpeg) turn into tensors — or nested string arrays for string matrices — and everything else stays as
 * Parquet stores it. With `decode=false` the encoded bytes are returned as they are. Cells are checked against
 * `limits` from their headers before they are decoded.
 */
final case class ReadPlan(schema: Option[Unischema], decode: Boolean, limits: DecodeLimits = DecodeLimits.Default) {
  private def encoded(name: String): Option[UnischemaField] =
    if (decode) schema.flatMap(_.field(name)).filter(_.isEncodedArray) else None

  /** The Spark type a stored column is read as. */
  def readType(field: StructField): StructField = encoded(field.name) match {
    case Some(f) => StructField(field.name, ReadPlan.sparkType(f), field.nullable || f.nullable, ReadPlan.describe(f))
    case None => field
  }

  def readSchema(storage: StructType): StructType = StructType(storage.fields.map(readType))

  /** The stored type of a column that Spark shows as `field` (binary for decoded columns). */
  def storageType(field: StructField): StructField =
    if (encoded(field.name).isDefined) field.copy(dataType = BinaryType, metadata = Metadata.empty) else field

  def storageSchema(read: StructType): StructType = StructType(read.fields.map(storageType))

  /** Decodes the rows of one file read with `storage` (in that column order). */
  def decoder(storage: StructType, file: String): Option[RowDecoder] = {
    val cells = storage.fields.zipWithIndex.flatMap { case (f, i) =>
      encoded(f.name).map(u => i -> CellDecoder(u, limits))
    }
    if (cells.isEmpty) None else Some(new RowDecoder(storage, cells.toMap, file))
  }
}

object ReadPlan {
  /** Tensor for numeric fields; `array<...<string|binary>>` (one level per dimension) for string matrices. */
  def sparkType(f: UnischemaField): DataType =
    if (f.isTextArray) f.shape.foldLeft[DataType](if (f.dtype == "string") StringType else BinaryType) {
      (t, _) => ArrayType(t, containsNull = false)
    } else new TensorUDT

  /** Field metadata `petastorm: {dtype, shape, codec}`, for people and tools reading the schema. */
  def describe(f: UnischemaField): Metadata = {
    val codec = f.codec match {
      case Some(FieldCodec.Image(format, _)) => format
      case Some(FieldCodec.CompressedNdarray) => "compressed_ndarray"
      case _ => "ndarray"
    }
    val inner = new MetadataBuilder().putString("dtype", f.dtype)
      .putLongArray("shape", f.shape.map(_.map(_.toLong).getOrElse(-1L)).toArray).putString("codec", codec).build()
    new MetadataBuilder().putMetadata("petastorm", inner).build()
  }
}

/**
 * Decodes one encoded cell into its Catalyst value, checking it against the field's dtype and shape and against
 * `limits` (from its header, before it is decoded). One per column of one reader (it remembers the last NPY header).
 */
final case class CellDecoder(field: UnischemaField, limits: DecodeLimits = DecodeLimits.Default) {
  private val fixed: Seq[Option[Int]] = field.shape
  private val headers = new NpyHeaderCache
  private lazy val dtype = DType(field.dtype)
  private var agreed: String = _ // the last stored descr found to be the field's dtype

  def apply(bytes: Array[Byte]): Any =
    if (field.isTextArray) textArray(bytes) else TensorUDT.write(tensor(bytes))

  private def tensor(bytes: Array[Byte]): Tensor = {
    val t = field.codec match {
      case Some(FieldCodec.Ndarray) => array(bytes, headers.header(bytes))
      case Some(FieldCodec.CompressedNdarray) =>
        val npy = Npz.member(bytes, limits)
        array(npy, headers.header(npy))
      case Some(_: FieldCodec.Image) =>
        val image = ImageCodec.decodeForField(bytes, fixed.map(_.getOrElse(-1)), limits)
        checkStored(image.dtype.descr)
        image
      case other => throw new IllegalStateException(s"no tensor codec $other")
    }
    checkShape(t.shape)
    t
  }

  /** An NPY array, its dtype checked from the header before it is decoded. */
  private def array(bytes: Array[Byte], h: NpyHeader): Tensor = {
    checkStored(h.descr)
    Npy.decode(bytes, h, limits)
  }

  /** Cells hold the field's dtype: the same kind and item size (the byte order may differ). */
  private def checkStored(descr: String): Unit = if (descr != agreed) {
    val stored = scala.util.Try(DType(Npy.littleEndian(descr))).toOption
    if (!stored.contains(dtype)) mismatch(stored.fold(descr)(_.name), dtype.name)
    agreed = descr
  }

  private def mismatch(stored: String, declared: String): Nothing = throw new IllegalArgumentException(
    s"the stored arrays are $stored, the field's dtype is $declared (the dataset's schema does not match its data)")

  private def checkShape(shape: Seq[Int]): Unit = {
    val matches = shape.length == fixed.length && shape.zip(fixed).forall { case (d, f) => f.forall(_ == d) }
    if (!matches) {
      val want = fixed.map(_.map(_.toString).getOrElse("None")).mkString("(", ", ", ")")
      throw new IllegalArgumentException(s"has shape (${shape.mkString(", ")}), the schema says $want")
    }
  }

  private def textArray(bytes: Array[Byte]): ArrayData = {
    val h = headers.header(bytes)
    // numpy's kinds: U (unicode) for a string field, S for a bytes field.
    if (!h.descr.drop(1).startsWith(if (field.dtype == "string") "U" else "S")) mismatch(h.descr, field.dtype)
    checkNesting(h.shape)
    val (shape, values) = Npy.decodeStrings(bytes, h, limits)
    checkShape(shape)
    val leaves: Array[Any] =
      if (field.dtype == "string") values.map(v => UTF8String.fromString(v.asInstanceOf[String])) else values
    def nest(dims: Seq[Int], offset: Int): ArrayData = dims match {
      case Seq(n) => new GenericArrayData(java.util.Arrays.copyOfRange(leaves.asInstanceOf[Array[AnyRef]], offset, offset + n))
      case n +: rest =>
        val step = rest.product
        new GenericArrayData(Array.tabulate[Any](n)(i => nest(rest, offset + i * step)))
    }
    if (shape.isEmpty) throw new IllegalArgumentException("holds a 0-d string array, which Spark cannot show as an array")
    nest(shape, 0)
  }

  /**
   * Spark shows a string matrix as nested arrays, one per index of every dimension but the last: counted at 16
   * bytes each against `maxCellBytes`, so that a header such as shape (2147483647, 0) cannot make billions of them.
   */
  private def checkNesting(shape: Seq[Int]): Unit = {
    val arrays = shape.dropRight(1).scanLeft(BigInt(1))(_ * _).sum
    if (arrays * 16 > limits.maxCellBytes) {
      throw limits.cellBytesError(s"the NPY header claims a string array of shape (${shape.mkString(", ")}), " +
        s"$arrays nested arrays", arrays * 16)
    }
  }
}

/** Replaces the encoded columns of each row by their decoded values. */
final class RowDecoder(storage: StructType, cells: Map[Int, CellDecoder], file: String) extends Serializable {
  private val types = storage.fields.map(_.dataType)

  def apply(row: InternalRow): InternalRow = {
    val out = new Array[Any](types.length)
    var i = 0
    while (i < types.length) {
      out(i) = if (row.isNullAt(i)) null else cells.get(i) match {
        case Some(cell) =>
          try cell(row.getBinary(i)) catch {
            case e: IllegalArgumentException => throw new IllegalArgumentException(
              s"Field '${storage.fields(i).name}' in $file: ${e.getMessage}", e)
          }
        case None => row.get(i, types(i))
      }
      i += 1
    }
    new GenericInternalRow(out)
  }
}
