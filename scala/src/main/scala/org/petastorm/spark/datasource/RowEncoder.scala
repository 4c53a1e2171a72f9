package org.petastorm.spark.datasource

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.petastorm.spark.codec.{DecodeLimits, ImageCodec, Npy, Npz}
import org.petastorm.spark.format.FieldCodec
import org.petastorm.spark.tensor.{Tensor, TensorExpressions, TensorUDT}

/**
 * Turns rows of the written DataFrame into rows of the plan's storage schema: tensor, vector and shaped array
 * cells become the bytes of their codec (NPY, NPZ, PNG or JPEG), image files are checked and kept as they are, and
 * other cells pass unchanged. Records the [[ColumnStats]] of the tensors it saw. A null in a column that is not
 * nullable (in the written DataFrame, or in the dataset an append adds to), and in an append a tensor that does not
 * fit the stored field's dtype and shape, fail the row with an error naming the column. Image files are decoded
 * (for their dtype and shape) under `limits`. One per writer: not thread-safe.
 */
final class RowEncoder(plan: WritePlan, limits: DecodeLimits = DecodeLimits.Default) {
  private val columns = plan.columns.toArray
  private val types = columns.map(_.field.dataType)
  private val stored = columns.map(c => plan.storedField(c.field.name))
  private val nullable = columns.indices.map(i => columns(i).field.nullable && stored(i).forall(_.nullable)).toArray
  private var stats = Map.empty[String, ColumnStats]

  def statsJson: String = ColumnStats.toJson(stats)

  def encode(row: InternalRow): InternalRow = {
    val out = new Array[Any](columns.length)
    var i = 0
    while (i < columns.length) {
      out(i) = if (row.isNullAt(i)) nullCell(i) else columns(i).tensor match {
        case None => row.get(i, types(i))
        case Some((source, codec)) =>
          val name = columns(i).field.name
          val tensor = try {
            val t = toTensor(source, row, i, codec)
            stored(i).foreach(AppendCheck.cell(_, t))
            t
          } catch {
            case e: IllegalArgumentException => throw new IllegalArgumentException(s"Column '$name': ${e.getMessage}", e)
          }
          stats = ColumnStats.add(stats, name, ColumnStats.of(tensor))
          if (source == TensorSource.ImageBytes) row.getBinary(i) else encodeTensor(name, tensor, codec)
      }
      i += 1
    }
    new GenericInternalRow(out)
  }

  private def nullCell(i: Int): Null = if (nullable(i)) null else {
    val where = if (columns(i).field.nullable) "the dataset stores it as non-nullable" else "it is not nullable"
    throw new IllegalArgumentException(s"Column '${columns(i).field.name}' holds a null, but $where")
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
      ImageCodec.decode(bytes, None, limits) // the dtype and shape the Unischema records; the bytes are stored as they are
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
