package org.petastorm.spark.tensor

import org.scalatest.funsuite.AnyFunSuite

/** DType: the numpy element types, their names, descrs and sizes, and the spellings that parse to them. */
class DTypeSuite extends AnyFunSuite {
  test("dtypes parse from numpy descrs, names and Spark type names") {
    assert(DType("<f4") == DType.Float32)
    assert(DType("float32") == DType.Float32)
    assert(DType("f4") == DType.Float32)
    assert(DType("float") == DType.Float32)
    assert(DType("|u1") == DType.UInt8)
    assert(DType("u1") == DType.UInt8)
    assert(DType("|b1") == DType.Bool)
    assert(DType("bool") == DType.Bool)
    assert(DType("<i8") == DType.Int64)
    assert(DType("=f8") == DType.Float64)
    assert(DType.all.forall(d => DType(d.descr) == d && DType(d.name) == d))
  }

  test("an unknown or big-endian dtype is an error that lists what is accepted") {
    val e = intercept[IllegalArgumentException](DType("complex64"))
    assert(e.getMessage.contains("Unknown tensor dtype 'complex64'"))
    assert(e.getMessage.contains("float32"))
    assert(intercept[IllegalArgumentException](DType(">f4")).getMessage.contains("big-endian"))
  }

  test("every dtype has numpy's name, descr and item size") {
    val expected = Seq(
      ("bool", "|b1", 1), ("int8", "|i1", 1), ("uint8", "|u1", 1), ("int16", "<i2", 2), ("uint16", "<u2", 2),
      ("int32", "<i4", 4), ("uint32", "<u4", 4), ("int64", "<i8", 8), ("uint64", "<u8", 8),
      ("float16", "<f2", 2), ("float32", "<f4", 4), ("float64", "<f8", 8))
    assert(DType.all.map(d => (d.name, d.descr, d.itemSize)) == expected)
    assert(DType.all.map(_.toString) == expected.map(_._1))
  }

  test("Spark type names, numpy short codes and native-order descrs parse; spaces around are ignored") {
    val spellings = Map(
      "boolean" -> DType.Bool, "?" -> DType.Bool, "byte" -> DType.Int8, "tinyint" -> DType.Int8,
      "short" -> DType.Int16, "smallint" -> DType.Int16, "int" -> DType.Int32, "integer" -> DType.Int32,
      "long" -> DType.Int64, "bigint" -> DType.Int64, "half" -> DType.Float16, "double" -> DType.Float64,
      "u2" -> DType.UInt16, "=u4" -> DType.UInt32, "<u8" -> DType.UInt64, "=i2" -> DType.Int16, " int32 " -> DType.Int32)
    spellings.foreach { case (spec, dtype) => assert(DType(spec) == dtype, spec) }
    assert(intercept[IllegalArgumentException](DType(null)).getMessage.startsWith("Unknown tensor dtype 'null'"))
    assert(intercept[IllegalArgumentException](DType("=boolean")).getMessage.contains("'=boolean'"))
  }

  test("isFloating holds for the float types only") {
    assert(DType.all.filter(_.isFloating) == Seq(DType.Float16, DType.Float32, DType.Float64))
  }

  test("integralRange gives each integer type's bounds, uint64 capped at Long.MaxValue") {
    assert(DType.Int8.integralRange == (-128L, 127L))
    assert(DType.UInt8.integralRange == (0L, 255L))
    assert(DType.Int16.integralRange == (-32768L, 32767L))
    assert(DType.UInt16.integralRange == (0L, 65535L))
    assert(DType.Int32.integralRange == (Int.MinValue.toLong, Int.MaxValue.toLong))
    assert(DType.UInt32.integralRange == (0L, 4294967295L))
    assert(DType.Int64.integralRange == (Long.MinValue, Long.MaxValue))
    assert(DType.UInt64.integralRange == (0L, Long.MaxValue))
    Seq(DType.Bool, DType.Float16, DType.Float32, DType.Float64).foreach { d =>
      assert(intercept[IllegalStateException](d.integralRange).getMessage == s"${d.name} is not an integral dtype")
    }
  }

  test("dtypes survive Java serialization as the same objects") {
    DType.all.foreach { d =>
      val buffer = new java.io.ByteArrayOutputStream()
      val out = new java.io.ObjectOutputStream(buffer)
      out.writeObject(d)
      out.close()
      val back = new java.io.ObjectInputStream(new java.io.ByteArrayInputStream(buffer.toByteArray)).readObject()
      assert(back eq d, d.name)
    }
  }
}
