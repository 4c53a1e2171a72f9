package org.petastorm.spark.tensor

import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{BinaryExpression, Expression, UnaryExpression, UnsafeArrayData}
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback
import org.apache.spark.sql.catalyst.util.ArrayData
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String

/** Catalyst expressions behind the tensor SQL functions; errors name the function and what it expected. */
private[spark] object TensorExpressions {
  /** Spark element type that holds every value of a dtype. */
  def sparkElementType(dtype: DType): DataType = dtype match {
    case DType.Bool => BooleanType
    case DType.Int8 => ByteType
    case DType.UInt8 | DType.Int16 => ShortType
    case DType.UInt16 | DType.Int32 => IntegerType
    case DType.UInt32 | DType.Int64 | DType.UInt64 => LongType
    case DType.Float16 | DType.Float32 => FloatType
    case DType.Float64 => DoubleType
  }

  /** The dtype a Spark array's elements become by default. */
  def defaultDType(elementType: DataType): Option[DType] = elementType match {
    case BooleanType => Some(DType.Bool)
    case ByteType => Some(DType.Int8)
    case ShortType => Some(DType.Int16)
    case IntegerType => Some(DType.Int32)
    case LongType => Some(DType.Int64)
    case FloatType => Some(DType.Float32)
    case DoubleType => Some(DType.Float64)
    case _: DecimalType => Some(DType.Float64) // SQL literals such as 1.0 are decimals
    case _ => None
  }

  def withContext[T](function: String)(body: => T): T =
    try body catch {
      case e: IllegalArgumentException => throw new IllegalArgumentException(s"$function: ${e.getMessage}", e)
      case e: ArithmeticException => throw new IllegalArgumentException(s"$function: ${e.getMessage}", e)
    }

  def checkTensor(function: String, dt: DataType): TypeCheckResult = dt match {
    case _: TensorUDT => TypeCheckResult.TypeCheckSuccess
    case other => TypeCheckResult.TypeCheckFailure(s"$function expects a tensor column, got ${other.simpleString}")
  }

  def checkShape(function: String, dt: DataType): TypeCheckResult = dt match {
    case ArrayType(ByteType | ShortType | IntegerType | LongType | NullType, _) => TypeCheckResult.TypeCheckSuccess
    case other => TypeCheckResult.TypeCheckFailure(
      s"$function expects the shape as an array of integers, got ${other.simpleString}")
  }

  /** Reads a shape argument of type `array<tinyint|smallint|int|bigint>` (`array()` for a 0-d tensor). */
  def shapeOf(function: String, shapeType: DataType, shape: Any): Seq[Int] = shape match {
    case null => throw new IllegalArgumentException(s"$function: the shape is null")
    case a: ArrayData =>
      val elementType = shapeType.asInstanceOf[ArrayType].elementType
      (0 until a.numElements()).map { i =>
        if (a.isNullAt(i)) throw new IllegalArgumentException(s"$function: dimension $i of the shape is null")
        val d = a.get(i, elementType).asInstanceOf[Number].longValue()
        if (d > Int.MaxValue || d < Int.MinValue) throw new IllegalArgumentException(s"$function: dimension $d is too large")
        d.toInt
      }
  }

  /** A tensor of `dtype` and `shape` from a flat Spark array of numbers or booleans (null elements refused). */
  def fromSparkArray(values: ArrayData, elementType: DataType, dtype: DType, shape: Seq[Int]): Tensor = {
    val n = values.numElements()
    val w = new ElementWriter(dtype, n)
    var i = 0
    while (i < n) {
      if (values.isNullAt(i)) throw new IllegalArgumentException(s"element $i is null; tensors cannot hold nulls")
      elementType match {
        case BooleanType => w.putLong(i, if (values.getBoolean(i)) 1L else 0L)
        case ByteType => w.putLong(i, values.getByte(i).toLong)
        case ShortType => w.putLong(i, values.getShort(i).toLong)
        case IntegerType => w.putLong(i, values.getInt(i).toLong)
        case LongType => w.putLong(i, values.getLong(i))
        case FloatType => w.putDouble(i, values.getFloat(i).toDouble)
        case DoubleType => w.putDouble(i, values.getDouble(i))
        case d: DecimalType => putDecimal(w, i, values.getDecimal(i, d.precision, d.scale), dtype)
        case other => throw new IllegalArgumentException(s"cannot make a tensor from ${other.simpleString} elements")
      }
      i += 1
    }
    Tensor(dtype, shape, w.result)
  }

  /** A decimal as a float (nearest value) or an integer (truncated toward zero, exactly, like numpy's astype). */
  private def putDecimal(w: ElementWriter, i: Int, v: Decimal, dtype: DType): Unit =
    if (dtype.isFloating || dtype == DType.Bool) w.putDouble(i, v.toDouble)
    else {
      val whole = v.toJavaBigDecimal.setScale(0, java.math.RoundingMode.DOWN)
      if (whole.toBigInteger.bitLength > 63) {
        throw new IllegalArgumentException(s"Value $v at index $i does not fit ${dtype.name}")
      }
      w.putLong(i, whole.longValueExact())
    }

  /** A Spark array holding the tensor's elements as `sparkElementType(tensor.dtype)`. */
  def toSparkArray(tensor: Tensor): ArrayData = tensor.dtype match {
    case DType.Bool => UnsafeArrayData.fromPrimitiveArray(tensor.toBooleanArray)
    case DType.Int8 => UnsafeArrayData.fromPrimitiveArray(tensor.toByteArray)
    case DType.UInt8 | DType.Int16 => UnsafeArrayData.fromPrimitiveArray(tensor.toShortArray)
    case DType.UInt16 | DType.Int32 => UnsafeArrayData.fromPrimitiveArray(tensor.toIntArray)
    case DType.UInt32 | DType.Int64 | DType.UInt64 => UnsafeArrayData.fromPrimitiveArray(tensor.toLongArray)
    case DType.Float16 | DType.Float32 => UnsafeArrayData.fromPrimitiveArray(tensor.toFloatArray)
    case DType.Float64 => UnsafeArrayData.fromPrimitiveArray(tensor.toDoubleArrayExact)
  }
}

import TensorExpressions._

/** `tensor_shape(t)`: the dimensions of a tensor as `array<int>`. */
case class TensorShape(child: Expression) extends UnaryExpression with CodegenFallback {
  override def dataType: DataType = ArrayType(IntegerType, containsNull = false)
  override def checkInputDataTypes(): TypeCheckResult = checkTensor(prettyName, child.dataType)
  override protected def nullSafeEval(input: Any): Any = input.asInstanceOf[InternalRow].getArray(1).copy()
  override def prettyName: String = "tensor_shape"
  override protected def withNewChildInternal(newChild: Expression): TensorShape = copy(child = newChild)
}

/** `tensor_dtype(t)`: the numpy dtype name of a tensor (`float32`, `uint8`, ...). */
case class TensorDTypeName(child: Expression) extends UnaryExpression with CodegenFallback {
  override def dataType: DataType = StringType
  override def checkInputDataTypes(): TypeCheckResult = checkTensor(prettyName, child.dataType)
  override protected def nullSafeEval(input: Any): Any = withContext(prettyName) {
    UTF8String.fromString(DType(input.asInstanceOf[InternalRow].getUTF8String(0).toString).name)
  }
  override def prettyName: String = "tensor_dtype"
  override protected def withNewChildInternal(newChild: Expression): TensorDTypeName = copy(child = newChild)
}

/** `tensor_to_array(t[, dtype])`: the elements in row-major order as a flat array (of double by default). */
case class TensorToArray(child: Expression, dtype: DType = DType.Float64) extends UnaryExpression with CodegenFallback {
  override def dataType: DataType = ArrayType(sparkElementType(dtype), containsNull = false)
  override def checkInputDataTypes(): TypeCheckResult = checkTensor(prettyName, child.dataType)
  override protected def nullSafeEval(input: Any): Any = withContext(prettyName) {
    toSparkArray(TensorUDT.read(input.asInstanceOf[InternalRow]).astype(dtype))
  }
  override def prettyName: String = "tensor_to_array"
  override protected def withNewChildInternal(newChild: Expression): TensorToArray = copy(child = newChild)
}

/** `tensor_reshape(t, shape)`: the same elements with another shape (one dimension may be -1). */
case class TensorReshape(left: Expression, right: Expression)
  extends BinaryExpression with CodegenFallback {
  override def dataType: DataType = new TensorUDT
  override def checkInputDataTypes(): TypeCheckResult = checkTensor(prettyName, left.dataType) match {
    case TypeCheckResult.TypeCheckSuccess => checkShape(prettyName, right.dataType)
    case failure => failure
  }
  override def eval(input: InternalRow): Any = left.eval(input) match {
    case null => null
    case row: InternalRow => withContext(prettyName) {
      TensorUDT.write(TensorUDT.read(row).reshape(shapeOf(prettyName, right.dataType, right.eval(input))))
    }
  }
  override def prettyName: String = "tensor_reshape"
  override protected def withNewChildrenInternal(l: Expression, r: Expression): TensorReshape = copy(left = l, right = r)
}

/**
 * `array_to_tensor(array, shape[, dtype])`: a tensor from a flat numeric array in row-major order. The dtype
 * defaults to the array's element type (float64 for decimals, the type of SQL literals such as `1.0`); one
 * dimension may be -1. A null array gives null; a null element, a wrong element count or a value the dtype cannot
 * hold is an error.
 */
case class ArrayToTensor(left: Expression, right: Expression, dtype: Option[DType] = None)
  extends BinaryExpression with CodegenFallback {
  override def dataType: DataType = new TensorUDT
  override def nullable: Boolean = left.nullable

  private def elementType: DataType = left.dataType.asInstanceOf[ArrayType].elementType
  private lazy val targetDType: DType = dtype.orElse(defaultDType(elementType)).get

  override def checkInputDataTypes(): TypeCheckResult = left.dataType match {
    case ArrayType(e, _) if defaultDType(e).isDefined => checkShape(prettyName, right.dataType)
    case other => TypeCheckResult.TypeCheckFailure(
      s"$prettyName expects an array of numbers or booleans, got ${other.simpleString}")
  }

  override def eval(input: InternalRow): Any = left.eval(input) match {
    case null => null
    case values: ArrayData => withContext(prettyName) {
      val shape = Tensor.resolveShape(shapeOf(prettyName, right.dataType, right.eval(input)), values.numElements())
      TensorUDT.write(fromSparkArray(values, elementType, targetDType, shape))
    }
  }

  override def prettyName: String = "array_to_tensor"
  override protected def withNewChildrenInternal(l: Expression, r: Expression): ArrayToTensor = copy(left = l, right = r)
}
