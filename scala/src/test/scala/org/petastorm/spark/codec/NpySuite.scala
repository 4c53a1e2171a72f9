package org.petastorm.spark.codec

import java.nio.{ByteBuffer, ByteOrder}
import java.nio.charset.StandardCharsets.{ISO_8859_1, UTF_8}

import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

/** Npy, NpyHeaderCache and Npz: the bytes of numpy's `np.save` and `np.savez_compressed`. */
class NpySuite extends AnyFunSuite {
  private val Magic = Array[Byte](0x93.toByte, 'N', 'U', 'M', 'P', 'Y')

  /** NPY bytes with a header of the given version (1, 2 or 3) holding `dict`, followed by `data`. */
  private def npy(dict: String, data: Array[Byte], version: Int = 1): Array[Byte] = {
    val lengthBytes = if (version == 1) 2 else 4
    val header = dict.getBytes(if (version == 3) UTF_8 else ISO_8859_1) ++ "\n".getBytes(ISO_8859_1)
    val length = ByteBuffer.allocate(lengthBytes).order(ByteOrder.LITTLE_ENDIAN)
    if (version == 1) length.putShort(header.length.toShort) else length.putInt(header.length)
    Magic ++ Array[Byte](version.toByte, 0) ++ length.array() ++ header ++ data
  }

  private def ints(values: Int*): Array[Byte] = {
    val buffer = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN)
    values.foreach(buffer.putInt)
    buffer.array()
  }

  test("encode writes np.save's version 1.0 header, padded to 64 bytes, that header parses back") {
    val cases = Seq(Seq() -> "()", Seq(0) -> "(0,)", Seq(3) -> "(3,)", Seq(2, 3) -> "(2, 3)", Seq(1, 2, 3, 4) -> "(1, 2, 3, 4)")
    cases.foreach { case (shape, text) =>
      val bytes = Npy.encode(Tensor(DType.Float32, shape, new Array[Byte](4 * shape.product)))
      assert(bytes.take(6).sameElements(Magic) && bytes(6) == 1 && bytes(7) == 0)
      val length = (bytes(8) & 0xff) | (bytes(9) & 0xff) << 8
      val dict = new String(bytes, 10, length, ISO_8859_1)
      assert(dict.startsWith(s"{'descr': '<f4', 'fortran_order': False, 'shape': $text, }"), dict)
      assert(dict.endsWith("\n") && dict.trim.endsWith("}"))
      assert((10 + length) % 64 == 0 && bytes.length == 10 + length + 4 * shape.product)
      assert(Npy.header(bytes) == NpyHeader("<f4", fortranOrder = false, shape, 10 + length))
    }
  }

  test("every dtype round trips through encode and decode, its descr in the header") {
    DType.all.foreach { dtype =>
      val data = Array.tabulate(6 * dtype.itemSize)(i => if (dtype == DType.Bool) (i % 2).toByte else (i * 7 + 1).toByte)
      val tensor = Tensor(dtype, Seq(2, 3), data)
      val bytes = Npy.encode(tensor)
      assert(Npy.header(bytes).descr == dtype.descr, dtype.name)
      assert(Npy.decode(bytes) == tensor, dtype.name)
    }
  }

  test("headers as numpy writes them parse: growth padding, no trailing comma, Python 2 longs, versions 2 and 3") {
    val padded = npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }" + " " * 60, ints(7, -8))
    assert(Npy.decode(padded) == Tensor.fromInts(Seq(2), Array(7, -8)))
    val noComma = npy("{'descr':'<i4','fortran_order':False,'shape':(1, 2)}", ints(1, 2))
    assert(Npy.header(noComma).shape == Seq(1, 2))
    assert(Npy.header(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 1L), }", ints(1, 2))).shape == Seq(2, 1))
    val dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }"
    val v2 = npy(dict, ints(3, 4), version = 2)
    assert(Npy.header(v2).dataOffset == 12 + dict.length + 1 && Npy.decode(v2).toIntArray.toSeq == Seq(3, 4))
    val v3 = npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", ints(5), version = 3)
    assert(Npy.decode(v3).toIntArray.toSeq == Seq(5))
  }

  test("Fortran-ordered and big-endian data are rearranged into little-endian C order") {
    // The (2, 3) array [[1, 2, 3], [4, 5, 6]] in Fortran order: column by column.
    val fortran = npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", ints(1, 4, 2, 5, 3, 6))
    assert(Npy.decode(fortran) == Tensor.fromInts(Seq(2, 3), Array(1, 2, 3, 4, 5, 6)))
    val big = ByteBuffer.allocate(12).order(ByteOrder.BIG_ENDIAN).putInt(1).putInt(-2).putInt(70000).array()
    assert(Npy.decode(npy("{'descr': '>i4', 'fortran_order': False, 'shape': (3,), }", big)) ==
      Tensor.fromInts(Seq(3), Array(1, -2, 70000)))
    val bigDoubles = ByteBuffer.allocate(16).order(ByteOrder.BIG_ENDIAN).putDouble(1.5).putDouble(-0.25).array()
    assert(Npy.decode(npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", bigDoubles)).toDoubleArray
      .toSeq == Seq(1.5, -0.25))
  }

  test("bad headers and data of the wrong length are errors that say what is wrong") {
    def message(bytes: Array[Byte]) = intercept[IllegalArgumentException](Npy.decode(bytes)).getMessage
    assert(message("PK\u0003\u0004 not npy".getBytes(ISO_8859_1)) == "not NPY data (12 bytes starting 504b0304206e6f74)")
    assert(message(Magic ++ Array[Byte](1)) == "not NPY data (7 bytes starting 934e554d505901)")
    assert(message(Magic ++ Array[Byte](4, 0, 0, 0)) == "unsupported NPY version 4.0")
    assert(message(Magic ++ Array[Byte](1, 0, 100, 0) ++ "{}".getBytes(ISO_8859_1)) ==
      "truncated NPY header: needs 110 bytes, got 12")
    assert(message(npy("{'descr': '<i4', 'shape': (2,), }", ints(1, 2))).startsWith("unreadable NPY header: {'descr'"))
    val dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    assert(message(npy(dict, new Array[Byte](20))) ==
      "NPY data of dtype float32 and shape (2, 3) needs 24 bytes, got 20 (truncated)")
    assert(message(npy(dict, new Array[Byte](28))) == "NPY data of dtype float32 and shape (2, 3) needs 24 bytes, got 28")
    assert(message(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new Array[Byte](8)))
      .startsWith("Unknown tensor dtype '<c8'"))
  }

  test("decodeStrings reads unicode and bytes arrays, trailing NULs removed, Fortran order rearranged") {
    def utf32(s: String, width: Int) = s.getBytes("UTF-32LE").padTo(4 * width, 0.toByte)
    val unicode = npy("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", utf32("ab", 3) ++ utf32("xyé", 3))
    val (shape, values) = Npy.decodeStrings(unicode)
    assert(shape == Seq(2) && values.toSeq == Seq("ab", "xyé"))
    val raw = Seq("a", "bb", "c", "").flatMap(_.getBytes(ISO_8859_1).padTo(2, 0.toByte)).toArray
    val (bytesShape, bytes) = Npy.decodeStrings(npy("{'descr': '|S2', 'fortran_order': True, 'shape': (2, 2), }", raw))
    assert(bytesShape == Seq(2, 2))
    assert(bytes.map(b => new String(b.asInstanceOf[Array[Byte]], ISO_8859_1)).toSeq == Seq("a", "c", "bb", ""))
    assert(intercept[IllegalArgumentException](Npy.decodeStrings(Npy.encode(Tensor.fromInts(Seq(1), Array(1)))))
      .getMessage == "NPY data of descr '<i4' is not a string or bytes array")
    assert(intercept[IllegalArgumentException](Npy.decodeStrings(npy("{'descr': '<U2', 'fortran_order': False, " +
      "'shape': (2,), }", new Array[Byte](12)))).getMessage.contains("needs 16 bytes, got 12"))
  }

  test("NpyHeaderCache parses a header once and again only when the header bytes change") {
    val cache = new NpyHeaderCache
    val a = Npy.encode(Tensor.fromInts(Seq(2), Array(1, 2)))
    val b = Npy.encode(Tensor.fromInts(Seq(2), Array(3, 4)))
    val first = cache.header(a)
    assert(first == Npy.header(a))
    assert(cache.header(b) eq first)
    val other = Npy.encode(Tensor.fromInts(Seq(3), Array(1, 2, 3)))
    assert(cache.header(other).shape == Seq(3))
  }

  test("Npz holds one compressed arr.npy member, and says what it found otherwise") {
    val t = Tensor.fromDoubles(Seq(4, 5), Array.tabulate(20)(_ * 0.5))
    val bytes = Npz.encode(t)
    assert(bytes.take(2).sameElements("PK".getBytes(ISO_8859_1)))
    assert(Npz.decode(bytes) == t)
    assert(intercept[IllegalArgumentException](Npz.decode(Npy.encode(t))).getMessage
      .startsWith("not a compressed ndarray (no ZIP member in "))
    val buffer = new java.io.ByteArrayOutputStream()
    val zip = new java.util.zip.ZipOutputStream(buffer)
    zip.putNextEntry(new java.util.zip.ZipEntry("other.npy"))
    zip.write(Npy.encode(t))
    zip.close()
    assert(intercept[IllegalArgumentException](Npz.decode(buffer.toByteArray)).getMessage ==
      "compressed ndarray member is 'other.npy', expected 'arr.npy'")
  }
}
