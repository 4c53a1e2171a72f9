package org.petastorm.spark.tensor

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow
import org.apache.spark.sql.catalyst.util.{ArrayData, GenericArrayData}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String

/**
 * Spark SQL type of a [[Tensor]] column, stored as `struct<dtype:string, shape:array<int>, data:binary>`: the numpy
 * descr, the dimensions and the C-order little-endian bytes. That struct is what Arrow, `collect()` and Python
 * see on the wire; Python's `petastorm.spark.tensor.TensorUDT` turns it into a `numpy.ndarray` without copying.
 */
class TensorUDT extends UserDefinedType[Tensor] {
  override def sqlType: DataType = TensorUDT.sqlType

  override def serialize(tensor: Tensor): InternalRow = new GenericInternalRow(Array[Any](
    UTF8String.fromString(tensor.dtype.descr),
    ArrayData.toArrayData(tensor.unsafeShape.clone()),
    tensor.unsafeData))

  override def deserialize(datum: Any): Tensor = datum match {
    case row: InternalRow => TensorUDT.read(row)
    case other => throw new IllegalArgumentException(s"Cannot read a tensor from ${other.getClass.getName}")
  }

  override def userClass: Class[Tensor] = classOf[Tensor]
  override def pyUDT: String = "petastorm.spark.tensor.TensorUDT"
  override def typeName: String = "tensor"
  override def asNullable: TensorUDT = this
  override def equals(other: Any): Boolean = other.isInstanceOf[TensorUDT]
  override def hashCode(): Int = classOf[TensorUDT].getName.hashCode
}

object TensorUDT {
  val sqlType: StructType = StructType(Seq(
    StructField("dtype", StringType, nullable = false),
    StructField("shape", ArrayType(IntegerType, containsNull = false), nullable = false),
    StructField("data", BinaryType, nullable = false)))

  /** Reads the internal struct form, checking it like [[Tensor.apply]]. */
  def read(row: InternalRow): Tensor = {
    if (row.isNullAt(0) || row.isNullAt(1) || row.isNullAt(2)) {
      throw new IllegalArgumentException("A tensor struct needs non-null dtype, shape and data")
    }
    Tensor(DType(row.getUTF8String(0).toString), row.getArray(1).toIntArray().toSeq, row.getBinary(2))
  }

  /** The internal struct form of a tensor, for expressions that build tensors. */
  def write(tensor: Tensor): InternalRow = new TensorUDT().serialize(tensor)

  def apply(): TensorUDT = new TensorUDT
}
