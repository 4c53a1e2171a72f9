package org.petastorm.spark.tensor

import java.nio.{ByteBuffer, ByteOrder}

import org.scalatest.funsuite.AnyFunSuite

class TensorSuite extends AnyFunSuite {
  test("the data must hold exactly product(shape) * itemsize bytes") {
    val e = intercept[IllegalArgumentException](Tensor("<f4", Seq(2, 3), new Array[Byte](20)))
    assert(e.getMessage.contains("needs 24 bytes"))
    assert(e.getMessage.contains("got 20"))
    assert(Tensor("<f4", Seq(2, 3), new Array[Byte](24)).size == 6)
  }

  test("negative dimensions are rejected") {
    val e = intercept[IllegalArgumentException](Tensor("|u1", Seq(2, -1), new Array[Byte](2)))
    assert(e.getMessage.contains("negative dimension -1"))
  }

  test("0-d and empty tensors") {
    val scalar = Tensor.fromDoubles(Seq(), Array(2.5))
    assert(scalar.rank == 0 && scalar.size == 1 && scalar.getDouble(0) == 2.5)
    val empty = Tensor.fromFloats(Seq(0), Array.emptyFloatArray)
    assert(empty.size == 0 && empty.toFloatArray.isEmpty)
    assert(Tensor.fromInts(Seq(0, 5), Array.emptyIntArray).shape == Seq(0, 5))
  }

  test("typed accessors read little-endian row-major data") {
    val bytes = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).putFloat(-2.5f).putFloat(3e9f).array()
    val t = Tensor("<f4", Seq(3), bytes)
    assert(t.toFloatArray.toSeq == Seq(1f, -2.5f, 3e9f))
    assert(t.toDoubleArray.toSeq == Seq(1.0, -2.5, 3e9f.toDouble))
    assert(Tensor.fromLongs(Seq(2), Array(Long.MinValue, Long.MaxValue)).toLongArray.toSeq == Seq(Long.MinValue, Long.MaxValue))
    assert(Tensor("|u1", Seq(2), Array(255.toByte, 1.toByte)).toIntArray.toSeq == Seq(255, 1))
    assert(Tensor("<u2", Seq(1), Array(0xff.toByte, 0xff.toByte)).toLongArray.toSeq == Seq(65535L))
    assert(Tensor("<u4", Seq(1), Array.fill(4)(0xff.toByte)).toLongArray.toSeq == Seq(4294967295L))
    assert(Tensor.fromBooleans(Seq(2), Array(true, false)).toBooleanArray.toSeq == Seq(true, false))
    intercept[UnsupportedOperationException](t.toIntArray)
  }

  test("float16 converts like numpy (round to nearest even, subnormals, infinities)") {
    val cases = Seq(0f -> 0x0000, -0f -> 0x8000, 1f -> 0x3c00, -2f -> 0xc000, 65504f -> 0x7bff, 65520f -> 0x7c00,
      5.9604645e-8f -> 0x0001, 6.1035156e-5f -> 0x0400, 0.1f -> 0x2e66, 1.0009765625f -> 0x3c01,
      1.00048828125f -> 0x3c00, Float.PositiveInfinity -> 0x7c00, 2.9802322e-8f -> 0x0000)
    cases.foreach { case (f, h) =>
      assert((HalfFloat.fromFloat(f) & 0xffff) == h, s"fromFloat($f)")
    }
    Seq(0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xc000, 0x2e66).foreach { h =>
      assert((HalfFloat.fromFloat(HalfFloat.toFloat(h.toShort)) & 0xffff) == h, s"round trip $h")
    }
    assert(HalfFloat.toFloat(0x7e00.toShort).isNaN)
  }

  test("astype range-checks instead of wrapping") {
    val t = Tensor.fromInts(Seq(3), Array(1, 300, -1))
    val e = intercept[IllegalArgumentException](t.astype(DType.UInt8))
    assert(e.getMessage.contains("Value 300 at index 1 does not fit uint8"))
    assert(Tensor.fromDoubles(Seq(2), Array(1.9, -1.9)).astype(DType.Int32).toIntArray.toSeq == Seq(1, -1))
    assert(Tensor.fromInts(Seq(2), Array(1, 2)).astype(DType.Float16).toFloatArray.toSeq == Seq(1f, 2f))
    intercept[IllegalArgumentException](Tensor.fromDoubles(Seq(1), Array(Double.NaN)).astype(DType.Int64))
  }

  test("reshape keeps the data and infers one -1 dimension") {
    val t = Tensor.fromInts(Seq(6), (1 to 6).toArray)
    assert(t.reshape(Seq(2, -1)).shape == Seq(2, 3))
    assert(t.reshape(Seq(3, 2)).toIntArray.toSeq == (1 to 6))
    assert(intercept[IllegalArgumentException](t.reshape(Seq(4, 2))).getMessage.contains("needs 8 elements, got 6"))
    intercept[IllegalArgumentException](t.reshape(Seq(-1, -1)))
  }

  test("equality is by dtype, shape and bytes") {
    assert(Tensor.fromInts(Seq(2), Array(1, 2)) == Tensor.fromInts(Seq(2), Array(1, 2)))
    assert(Tensor.fromInts(Seq(2), Array(1, 2)) != Tensor.fromInts(Seq(2, 1), Array(1, 2)))
    assert(Tensor.fromInts(Seq(2), Array(1, 2)).hashCode == Tensor.fromInts(Seq(2), Array(1, 2)).hashCode)
  }
}
