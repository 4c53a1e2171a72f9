package org.petastorm.spark.tensor

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{BinaryExpression, Expression}
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback
import org.apache.spark.sql.types._

import TensorExpressions._

/**
 * `vector_to_tensor(vector[, shape])`: a Spark ML vector (dense or sparse) as a float64 tensor of `shape`, by
 * default `(size,)`; one dimension may be -1. A null vector gives null.
 */
case class VectorToTensor(left: Expression, right: Expression) extends BinaryExpression with CodegenFallback {
  override def dataType: DataType = new TensorUDT
  override def nullable: Boolean = left.nullable

  override def checkInputDataTypes(): TypeCheckResult = left.dataType match {
    case udt: UserDefinedType[_] if VectorToTensor.isVector(udt.sqlType) => checkShape(prettyName, right.dataType)
    case other => TypeCheckResult.TypeCheckFailure(
      s"$prettyName expects a Spark ML vector column (org.apache.spark.ml.linalg.Vector), got ${other.simpleString}")
  }

  override def eval(input: InternalRow): Any = left.eval(input) match {
    case null => null
    case vector: InternalRow => withContext(prettyName) {
      val values = VectorToTensor.values(vector)
      val shape = Tensor.resolveShape(shapeOf(prettyName, right.dataType, right.eval(input)), values.length)
      TensorUDT.write(Tensor.fromDoubles(shape, values))
    }
  }

  override def prettyName: String = "vector_to_tensor"
  override protected def withNewChildrenInternal(l: Expression, r: Expression): VectorToTensor =
    copy(left = l, right = r)
}

object VectorToTensor {
  /**
   * True for the storage struct of Spark's vector UDTs (`org.apache.spark.ml.linalg.VectorUDT` and the older
   * `mllib` one): `struct<type:tinyint, size:int, indices:array<int>, values:array<double>>`, type 0 sparse, 1 dense.
   */
  def isVector(sqlType: DataType): Boolean = sqlType match {
    case StructType(Array(
        StructField("type", ByteType, _, _),
        StructField("size", IntegerType, _, _),
        StructField("indices", ArrayType(IntegerType, _), _, _),
        StructField("values", ArrayType(DoubleType, _), _, _))) => true
    case _ => false
  }

  /** The dense values of a vector in its storage struct form. */
  private def values(vector: InternalRow): Array[Double] = vector.getByte(0) match {
    case 1 => vector.getArray(3).toDoubleArray()
    case 0 =>
      val size = vector.getInt(1)
      val indices = vector.getArray(2).toIntArray()
      val values = vector.getArray(3).toDoubleArray()
      if (indices.length != values.length) {
        throw new IllegalArgumentException(s"a sparse vector has ${indices.length} indices but ${values.length} values")
      }
      val dense = new Array[Double](size)
      var i = 0
      while (i < indices.length) {
        if (indices(i) < 0 || indices(i) >= size) {
          throw new IllegalArgumentException(s"index ${indices(i)} of a sparse vector of size $size is out of range")
        }
        dense(indices(i)) = values(i)
        i += 1
      }
      dense
    case other => throw new IllegalArgumentException(s"unknown vector type $other (expected 0 sparse or 1 dense)")
  }
}
