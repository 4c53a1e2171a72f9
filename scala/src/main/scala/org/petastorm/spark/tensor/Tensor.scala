package org.petastorm.spark.tensor

import java.nio.{ByteBuffer, ByteOrder}
import java.util.Arrays

import org.apache.spark.sql.types.SQLUserDefinedType

/**
 * An n-dimensional array: a numpy dtype, a shape and the row-major little-endian bytes of its elements, exactly
 * the memory of a C-contiguous numpy array. Instances are immutable; the constructor checks that the data holds
 * exactly `product(shape) * itemSize` bytes.
 */
@SQLUserDefinedType(udt = classOf[TensorUDT])
final class Tensor private (val dtype: DType, shapeDims: Array[Int], bytes: Array[Byte]) extends Serializable {

  /** The dimensions, outermost first; empty for a scalar (0-d) tensor. */
  def shape: IndexedSeq[Int] = shapeDims.toIndexedSeq

  /** Number of dimensions. */
  def rank: Int = shapeDims.length

  /** Number of elements: the product of the dimensions (1 for a 0-d tensor). */
  def size: Int = Tensor.elementCount(shapeDims)

  /** A copy of the raw little-endian element bytes. */
  def data: Array[Byte] = bytes.clone()

  private[spark] def unsafeData: Array[Byte] = bytes
  private[spark] def unsafeShape: Array[Int] = shapeDims

  private def buffer: ByteBuffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)

  private def expect(allowed: DType*): Unit =
    if (!allowed.contains(dtype)) {
      throw new UnsupportedOperationException(
        s"Tensor of dtype ${dtype.name} cannot be read as ${allowed.map(_.name).mkString(" or ")} without " +
          "conversion; use toDoubleArray or toLongArray")
    }

  /** Elements of a float32 tensor (float16 is widened exactly). */
  def toFloatArray: Array[Float] = {
    expect(DType.Float32, DType.Float16)
    if (dtype == DType.Float32) { val out = new Array[Float](size); buffer.asFloatBuffer().get(out); out }
    else Array.tabulate(size)(i => HalfFloat.toFloat(buffer.getShort(2 * i)))
  }

  /** Elements of a float64 tensor. */
  def toDoubleArrayExact: Array[Double] = {
    expect(DType.Float64)
    val out = new Array[Double](size); buffer.asDoubleBuffer().get(out); out
  }

  /** Elements of an int32 tensor (int8/uint8/int16/uint16 are widened exactly). */
  def toIntArray: Array[Int] = {
    expect(DType.Int32, DType.Int16, DType.UInt16, DType.Int8, DType.UInt8)
    if (dtype == DType.Int32) { val out = new Array[Int](size); buffer.asIntBuffer().get(out); out }
    else Array.tabulate(size)(i => getLong(i).toInt)
  }

  /** Elements of an int64 tensor (every narrower integer type, and uint64 below 2^63, is widened exactly). */
  def toLongArray: Array[Long] = {
    if (dtype.isFloating || dtype == DType.Bool) expect(DType.Int64)
    if (dtype == DType.Int64) { val out = new Array[Long](size); buffer.asLongBuffer().get(out); out }
    else Array.tabulate(size)(i => getLong(i))
  }

  /** Elements of an int16 tensor (int8/uint8 widened). */
  def toShortArray: Array[Short] = {
    expect(DType.Int16, DType.Int8, DType.UInt8)
    if (dtype == DType.Int16) { val out = new Array[Short](size); buffer.asShortBuffer().get(out); out }
    else Array.tabulate(size)(i => getLong(i).toShort)
  }

  /** Elements of an int8 tensor. */
  def toByteArray: Array[Byte] = { expect(DType.Int8); bytes.clone() }

  /** Elements of a bool tensor. */
  def toBooleanArray: Array[Boolean] = { expect(DType.Bool); bytes.map(_ != 0) }

  /** Every element converted to Double, whatever the dtype (int64 beyond 2^53 loses precision). */
  def toDoubleArray: Array[Double] = Array.tabulate(size)(getDouble)

  /** The i-th element (row-major order) as a Double. */
  def getDouble(i: Int): Double = dtype match {
    case DType.Float64 => buffer.getDouble(8 * i)
    case DType.Float32 => buffer.getFloat(4 * i).toDouble
    case DType.Float16 => HalfFloat.toFloat(buffer.getShort(2 * i)).toDouble
    case DType.UInt64 => java.lang.Long.toUnsignedString(buffer.getLong(8 * i)).toDouble
    case _ => getLong(i).toDouble
  }

  /** The i-th element (row-major order) of an integral or bool tensor as a Long. */
  def getLong(i: Int): Long = dtype match {
    case DType.Bool => if (bytes(i) != 0) 1L else 0L
    case DType.Int8 => bytes(i).toLong
    case DType.UInt8 => (bytes(i) & 0xff).toLong
    case DType.Int16 => buffer.getShort(2 * i).toLong
    case DType.UInt16 => (buffer.getShort(2 * i) & 0xffff).toLong
    case DType.Int32 => buffer.getInt(4 * i).toLong
    case DType.UInt32 => buffer.getInt(4 * i) & 0xffffffffL
    case DType.Int64 => buffer.getLong(8 * i)
    case DType.UInt64 =>
      val v = buffer.getLong(8 * i)
      if (v < 0) throw new ArithmeticException(s"uint64 element $i (${java.lang.Long.toUnsignedString(v)}) exceeds Long")
      v
    case other => throw new UnsupportedOperationException(s"Tensor of dtype ${other.name} holds no integers")
  }

  /** The same values as another dtype, converted like [[Tensor.fromDoubles]] (range-checked, never wrapped). */
  def astype(target: DType): Tensor = if (target == dtype) this else {
    val w = new ElementWriter(target, size)
    var i = 0
    while (i < size) {
      if (dtype.isFloating) w.putDouble(i, getDouble(i)) else w.putLong(i, getLong(i))
      i += 1
    }
    Tensor(target, shapeDims.toSeq, w.result)
  }

  /** The same elements with another shape of equal size (one dimension may be -1: inferred). */
  def reshape(newShape: Seq[Int]): Tensor = Tensor(dtype, Tensor.resolveShape(newShape, size), bytes)

  override def equals(other: Any): Boolean = other match {
    case t: Tensor => dtype == t.dtype && Arrays.equals(shapeDims, t.unsafeShape) && Arrays.equals(bytes, t.unsafeData)
    case _ => false
  }

  override def hashCode: Int = (dtype.hashCode * 31 + Arrays.hashCode(shapeDims)) * 31 + Arrays.hashCode(bytes)

  override def toString: String = {
    val preview = (0 until math.min(size, 8)).map(i => if (dtype.isFloating) getDouble(i).toString else
      if (dtype == DType.UInt64) java.lang.Long.toUnsignedString(buffer.getLong(8 * i)) else getLong(i).toString)
    s"Tensor(${dtype.name}, shape=(${shapeDims.mkString(", ")}), [${preview.mkString(", ")}${if (size > 8) ", ..." else ""}])"
  }
}

object Tensor {
  /** A tensor over the given little-endian bytes; the bytes are used as they are (not copied). */
  def apply(dtype: DType, shape: Seq[Int], data: Array[Byte]): Tensor = {
    val dims = shape.toArray
    validateShape(dims)
    val expected = elementCount(dims).toLong * dtype.itemSize
    if (data == null) throw new IllegalArgumentException("Tensor data must not be null")
    if (data.length.toLong != expected) {
      throw new IllegalArgumentException(
        s"Tensor of dtype ${dtype.name} and shape (${dims.mkString(", ")}) needs $expected bytes " +
          s"(${elementCount(dims)} elements of ${dtype.itemSize} bytes), got ${data.length}")
    }
    new Tensor(dtype, dims, data)
  }

  def apply(dtype: String, shape: Seq[Int], data: Array[Byte]): Tensor = apply(DType(dtype), shape, data)

  def fromFloats(shape: Seq[Int], values: Array[Float]): Tensor =
    fill(DType.Float32, shape, values.length)((b, i) => b.putFloat(values(i)))
  def fromDoubles(shape: Seq[Int], values: Array[Double]): Tensor =
    fill(DType.Float64, shape, values.length)((b, i) => b.putDouble(values(i)))
  def fromInts(shape: Seq[Int], values: Array[Int]): Tensor =
    fill(DType.Int32, shape, values.length)((b, i) => b.putInt(values(i)))
  def fromLongs(shape: Seq[Int], values: Array[Long]): Tensor =
    fill(DType.Int64, shape, values.length)((b, i) => b.putLong(values(i)))
  def fromShorts(shape: Seq[Int], values: Array[Short]): Tensor =
    fill(DType.Int16, shape, values.length)((b, i) => b.putShort(values(i)))
  def fromBytes(shape: Seq[Int], values: Array[Byte]): Tensor = apply(DType.Int8, shape, values.clone())
  def fromBooleans(shape: Seq[Int], values: Array[Boolean]): Tensor =
    apply(DType.Bool, shape, values.map(v => if (v) 1.toByte else 0.toByte))

  /**
   * A tensor of `dtype` from numbers given as Doubles, converted the way numpy's `astype` converts in-range values
   * (floats to integers truncate toward zero). A value outside the dtype's range, or a NaN bound for an integer
   * type, is an error naming its index, never a wrapped-around element.
   */
  def fromDoubles(dtype: DType, shape: Seq[Int], values: Array[Double]): Tensor = {
    val w = new ElementWriter(dtype, values.length)
    var i = 0
    while (i < values.length) { w.putDouble(i, values(i)); i += 1 }
    apply(dtype, shape, w.result)
  }

  /** A tensor of `dtype` from integers given as Longs, range-checked like [[fromDoubles]]. */
  def fromLongs(dtype: DType, shape: Seq[Int], values: Array[Long]): Tensor = {
    val w = new ElementWriter(dtype, values.length)
    var i = 0
    while (i < values.length) { w.putLong(i, values(i)); i += 1 }
    apply(dtype, shape, w.result)
  }

  private def fill(dtype: DType, shape: Seq[Int], n: Int)(put: (ByteBuffer, Int) => Unit): Tensor = {
    val buf = ByteBuffer.allocate(n * dtype.itemSize).order(ByteOrder.LITTLE_ENDIAN)
    var i = 0
    while (i < n) { put(buf, i); i += 1 }
    apply(dtype, shape, buf.array())
  }

  private[spark] def validateShape(dims: Array[Int]): Unit =
    dims.find(_ < 0).foreach { d =>
      throw new IllegalArgumentException(s"Tensor shape (${dims.mkString(", ")}) has a negative dimension $d")
    }

  private[spark] def elementCount(dims: Array[Int]): Int = {
    val n = dims.foldLeft(1L)(_ * _)
    if (n > Int.MaxValue) throw new IllegalArgumentException(s"Tensor shape (${dims.mkString(", ")}) is too large")
    n.toInt
  }

  /** Resolves one -1 dimension against `size` elements and checks the element count. */
  private[spark] def resolveShape(shape: Seq[Int], size: Int): Seq[Int] = {
    val unknown = shape.count(_ == -1)
    if (unknown > 1) throw new IllegalArgumentException(s"Shape (${shape.mkString(", ")}) has more than one -1")
    shape.find(d => d < -1).foreach { d =>
      throw new IllegalArgumentException(s"Shape (${shape.mkString(", ")}) has a negative dimension $d")
    }
    val known = shape.filter(_ != -1).foldLeft(1L)(_ * _)
    val resolved =
      if (unknown == 1 && known > 0 && size % known == 0) shape.map(d => if (d == -1) (size / known).toInt else d)
      else shape
    val count = resolved.foldLeft(1L)(_ * _)
    if (unknown == 1 && resolved.contains(-1) || count != size) {
      throw new IllegalArgumentException(
        s"Shape (${shape.mkString(", ")}) needs ${if (unknown == 1) s"a multiple of $known" else count.toString} " +
          s"elements, got $size")
    }
    resolved
  }
}

/** Writes elements of one dtype into little-endian bytes, rejecting values the dtype cannot hold. */
private[spark] final class ElementWriter(dtype: DType, n: Int) {
  private val buf = ByteBuffer.allocate(n * dtype.itemSize).order(ByteOrder.LITTLE_ENDIAN)

  def result: Array[Byte] = buf.array()

  def putLong(i: Int, v: Long): Unit = dtype match {
    case DType.Float64 => buf.putDouble(8 * i, v.toDouble)
    case DType.Float32 => buf.putFloat(4 * i, v.toFloat)
    case DType.Float16 => buf.putShort(2 * i, HalfFloat.fromFloat(v.toFloat))
    case DType.Bool => buf.put(i, if (v != 0) 1.toByte else 0.toByte)
    case _ =>
      val (lo, hi) = dtype.integralRange
      if (v < lo || v > hi) throw new IllegalArgumentException(s"Value $v at index $i does not fit ${dtype.name}")
      putIntegral(i, v)
  }

  def putDouble(i: Int, v: Double): Unit = dtype match {
    case DType.Float64 => buf.putDouble(8 * i, v)
    case DType.Float32 => buf.putFloat(4 * i, v.toFloat)
    case DType.Float16 => buf.putShort(2 * i, HalfFloat.fromFloat(v.toFloat))
    case DType.Bool => buf.put(i, if (v != 0) 1.toByte else 0.toByte)
    case _ =>
      val (lo, hi) = dtype.integralRange
      val t = if (v.isNaN) Double.NaN else if (v < 0) math.ceil(v) else math.floor(v)
      if (t.isNaN || t < lo.toDouble || t > hi.toDouble || (hi == Long.MaxValue && t >= 9.223372036854775807e18)) {
        throw new IllegalArgumentException(s"Value $v at index $i does not fit ${dtype.name}")
      }
      putIntegral(i, t.toLong)
  }

  private def putIntegral(i: Int, v: Long): Unit = dtype.itemSize match {
    case 1 => buf.put(i, v.toByte)
    case 2 => buf.putShort(2 * i, v.toShort)
    case 4 => buf.putInt(4 * i, v.toInt)
    case 8 => buf.putLong(8 * i, v)
  }
}
