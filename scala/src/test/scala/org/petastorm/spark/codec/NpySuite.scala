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

  private val cellBytesHint =
    "raise it with the read option maxCellBytes or the session conf spark.petastorm.maxCellBytes if the data really needs it"

  test("an NPY header claiming more than maxCellBytes is refused before anything is allocated") {
    val huge = CraftedCells.hugeNpy
    assert(huge.length == 128 + 16)
    assert(intercept[DecodeLimitException](Npy.decode(huge)).getMessage == "the NPY header claims an array of " +
      s"2,000,000,000 bytes, over the limit of 536,870,912 (maxCellBytes); $cellBytesHint")
    val t = Tensor.fromFloats(Seq(2, 3), Array.fill(6)(1f))
    val bytes = Npy.encode(t)
    assert(Npy.decode(bytes, Npy.header(bytes), DecodeLimits(maxCellBytes = 24)) == t)
    assert(intercept[DecodeLimitException](Npy.decode(bytes, Npy.header(bytes), DecodeLimits(maxCellBytes = 23)))
      .getMessage.startsWith("the NPY header claims an array of 24 bytes, over the limit of 23 (maxCellBytes)"))
    val strings = npy("{'descr': '<U3', 'fortran_order': False, 'shape': (1000000000,), }", new Array[Byte](12))
    assert(intercept[DecodeLimitException](Npy.decodeStrings(strings)).getMessage
      .startsWith("the NPY header claims an array of 12,000,000,000 bytes, over the limit of 536,870,912"))
    assert(intercept[IllegalArgumentException](DecodeLimits(maxCellBytes = 0)).getMessage
      .contains("maxCellBytes must be positive, got 0"))
  }

  test("shape dimensions are read with 64-bit arithmetic: none is read modulo 2^32, no element count overflows") {
    def header(shape: String) = Npy.header(npy(s"{'descr': '<f4', 'fortran_order': False, 'shape': $shape, }", Array()))
    def message(shape: String) = intercept[IllegalArgumentException](header(shape)).getMessage
    assert(message("(4294967299,)") ==
      "NPY header shape (4294967299,) has a dimension of 4294967299, more than a JVM array holds (2147483647)")
    assert(message("(2147483647, 2147483647, 2147483647)") ==
      "NPY header shape (2147483647, 2147483647, 2147483647) has more elements than a 64-bit count holds")
    assert(message("(3, -1)") == "NPY header shape (3, -1) has a dimension '-1' that is not a non-negative integer")
    assert(header("(2147483647, 2147483647, 0)").elementCount == 0)
    assert(header("(2147483647L, 3L)").elementCount == 3L * Int.MaxValue)
    // Versions 2 and 3 store the header length in 4 bytes: lengths of 2^31 and more are lengths, not negative.
    for ((version, length) <- Seq(2 -> Array[Byte](-1, -1, -1, -1), 3 -> Array[Byte](0, 0, 0, -128))) {
      val bytes = Magic ++ Array[Byte](version.toByte, 0) ++ length ++ "{}".getBytes(ISO_8859_1)
      val needs = 12 + (ByteBuffer.wrap(length).order(ByteOrder.LITTLE_ENDIAN).getInt & 0xffffffffL)
      assert(intercept[IllegalArgumentException](Npy.decode(bytes)).getMessage ==
        s"truncated NPY header: needs $needs bytes, got 14")
    }
    // Strings of no width would make elements out of no data.
    assert(intercept[IllegalArgumentException](Npy.decodeStrings(npy("{'descr': '|S0', 'fortran_order': False, " +
      "'shape': (2000000000,), }", Array()))).getMessage == "NPY data of descr '|S0' is not a string or bytes array")
  }

  test("a ZIP bomb (1 GiB from 1 MB) is refused from its central directory, before anything is inflated") {
    val bomb = CraftedCells.npzBomb
    assert(bomb.length < 1100000)
    // It is a real one: its DEFLATE data inflates to the NPY header, then zeros.
    val inflater = new java.util.zip.Inflater(true)
    inflater.setInput(bomb, 30 + Npz.Member.length, bomb.length - 30 - Npz.Member.length)
    val start = new Array[Byte](1 << 20)
    assert(inflater.inflate(start) == start.length && !inflater.finished())
    inflater.end()
    assert(Npy.header(start).shape == Seq(CraftedCells.BombElements) && start.drop(128).forall(_ == 0))
    assert(intercept[DecodeLimitException](Npz.decode(bomb)).getMessage == "the ZIP directory claims a member " +
      s"'arr.npy' of 1,073,741,952 bytes, over the limit of 536,870,912 (maxCellBytes); $cellBytesHint")
    // A ZIP64 directory entry states its sizes in an extra field.
    val npyBytes = Npy.encode(Tensor.fromFloats(Seq(1000), Array.fill(1000)(0.5f)))
    val data = CraftedCells.deflate(npyBytes)
    val crc = CraftedCells.crc32(npyBytes)
    assert(intercept[DecodeLimitException](Npz.decode(CraftedCells.zip(data, crc, 5L << 30, zip64 = true)))
      .getMessage.startsWith("the ZIP directory claims a member 'arr.npy' of 5,368,709,120 bytes"))
    assert(Npz.decode(CraftedCells.zip(data, crc, npyBytes.length, zip64 = true)).toFloatArray.forall(_ == 0.5f))
    assert(intercept[DecodeLimitException](Npz.decode(Npz.encode(Npy.decode(npyBytes)), DecodeLimits(maxCellBytes = 4000)))
      .getMessage.startsWith("the ZIP directory claims a member 'arr.npy' of 4,128 bytes, over the limit of 4,000"))
  }

  test("a member is inflated to the size its directory entry states, never further, and its CRC is checked") {
    val npyBytes = Npy.encode(Tensor.fromFloats(Seq(1000), Array.fill(1000)(0f)))
    val (data, crc, size) = (CraftedCells.deflate(npyBytes), CraftedCells.crc32(npyBytes), npyBytes.length)
    assert(Npz.decode(CraftedCells.zip(data, crc, size)).shape == Seq(1000))
    def message(bytes: Array[Byte]) = intercept[IllegalArgumentException](Npz.decode(bytes)).getMessage
    assert(message(CraftedCells.zip(data, crc, 200)) ==
      "malformed ZIP archive: member 'arr.npy' inflates past the 200 bytes its directory entry states")
    assert(message(CraftedCells.zip(data, crc, size + 1)) ==
      s"malformed ZIP archive: member 'arr.npy' inflates to $size bytes, its directory entry states ${size + 1}")
    assert(message(CraftedCells.zip(data, crc ^ 1, size)) == "malformed ZIP archive: member 'arr.npy' fails its CRC check")
    assert(message(CraftedCells.zip(data.take(data.length / 2), crc, size)).startsWith(
      "malformed ZIP archive: member 'arr.npy' inflates to "))
    val stored = new java.io.ByteArrayOutputStream()
    val zip = new java.util.zip.ZipOutputStream(stored)
    val entry = new java.util.zip.ZipEntry("arr.npy")
    entry.setMethod(java.util.zip.ZipEntry.STORED); entry.setSize(size); entry.setCrc(crc)
    zip.putNextEntry(entry); zip.write(npyBytes); zip.close()
    assert(Npz.decode(stored.toByteArray).shape == Seq(1000))
  }
}
