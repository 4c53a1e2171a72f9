package org.petastorm.spark.codec

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets.{ISO_8859_1, US_ASCII, UTF_8}
import java.util.zip.{ZipEntry, ZipOutputStream}

import org.petastorm.spark.tensor.{DType, Tensor}

/** A parsed NPY header: the array-protocol descr, Fortran order, the shape and where the data starts. */
final case class NpyHeader(descr: String, fortranOrder: Boolean, shape: Seq[Int], dataOffset: Int) {
  /** The number of elements: the product of the dimensions (checked to fit a Long when the header is parsed). */
  def elementCount: Long = Npy.elementCount(shape)
}

/**
 * The NPY format (what `np.save` writes, version 1.0): magic, version, header length, a Python dict literal padded
 * with spaces to a 64-byte boundary and ending in a newline, then the C-order data. Petastorm's `NdarrayCodec`
 * stores exactly these bytes. Headers are checked before anything is allocated: dimensions are read with 64-bit
 * arithmetic and must fit a JVM array, their product a Long, and the array's size the [[DecodeLimits]].
 */
object Npy {
  /** Whether `a` and `b` both hold at least `n` bytes and agree on the first `n` (Java 8 has no ranged Arrays.equals). */
  private[codec] def samePrefix(a: Array[Byte], b: Array[Byte], n: Int): Boolean = {
    if (a.length < n || b.length < n) return false
    var i = 0
    while (i < n && a(i) == b(i)) i += 1
    i == n
  }

  private val Magic = Array[Byte](0x93.toByte, 'N', 'U', 'M', 'P', 'Y')
  private val HeaderPattern =
    """\{\s*'descr'\s*:\s*'([^']*)'\s*,\s*'fortran_order'\s*:\s*(True|False)\s*,\s*'shape'\s*:\s*\(([^)]*)\)\s*,?\s*\}\s*""".r

  /** `np.save` bytes of a tensor (version 1.0 header, C order). */
  def encode(tensor: Tensor): Array[Byte] = {
    val dims = tensor.shape
    val shapeText = if (dims.length == 1) s"(${dims.head},)" else dims.mkString("(", ", ", ")")
    val dict = s"{'descr': '${tensor.dtype.descr}', 'fortran_order': False, 'shape': $shapeText, }"
    val unpadded = Magic.length + 2 + 2 + dict.length + 1
    val padded = (unpadded + 63) / 64 * 64
    val header = dict + " " * (padded - unpadded) + "\n"
    val data = tensor.unsafeData
    val out = new Array[Byte](Magic.length + 4 + header.length + data.length)
    System.arraycopy(Magic, 0, out, 0, Magic.length)
    out(6) = 1; out(7) = 0
    out(8) = (header.length & 0xff).toByte; out(9) = (header.length >> 8).toByte
    System.arraycopy(header.getBytes(US_ASCII), 0, out, 10, header.length)
    System.arraycopy(data, 0, out, 10 + header.length, data.length)
    out
  }

  /** Parses the header of NPY bytes (versions 1.0, 2.0 and 3.0). */
  def header(bytes: Array[Byte]): NpyHeader = {
    if (bytes.length < 10 || !bytes.take(6).sameElements(Magic)) {
      throw new IllegalArgumentException(s"not NPY data (${bytes.length} bytes starting ${hex(bytes)})")
    }
    val major = bytes(6).toInt
    // The header length: 2 bytes in version 1, 4 (unsigned, up to 2^32 - 1) in versions 2 and 3.
    val (length, start) = major match {
      case 1 => ((bytes(8) & 0xff).toLong | (bytes(9) & 0xff) << 8, 10)
      case 2 | 3 if bytes.length >= 12 =>
        ((bytes(8) & 0xff).toLong | (bytes(9) & 0xff) << 8 | (bytes(10) & 0xff) << 16 | (bytes(11) & 0xffL) << 24, 12)
      case _ => throw new IllegalArgumentException(s"unsupported NPY version $major.${bytes(7)}")
    }
    if (start + length > bytes.length) {
      throw new IllegalArgumentException(s"truncated NPY header: needs ${start + length} bytes, got ${bytes.length}")
    }
    val text = new String(bytes, start, length.toInt, if (major == 3) UTF_8 else ISO_8859_1)
    text.trim match {
      case HeaderPattern(descr, fortran, shape) => NpyHeader(descr, fortran == "True", dims(shape), start + length.toInt)
      case other => throw new IllegalArgumentException(s"unreadable NPY header: $other")
    }
  }

  /**
   * The dimensions of a header's shape tuple (Python 2 longs such as `3L` too), read with 64-bit arithmetic: each
   * must fit a JVM array and their product a Long, or the header is refused (never read modulo 2^32).
   */
  private def dims(shape: String): Seq[Int] = {
    val dims = shape.split(",").map(_.trim).filter(_.nonEmpty).toSeq.map { text =>
      val digits = text.stripSuffix("L")
      if (digits.isEmpty || !digits.forall(c => c >= '0' && c <= '9')) {
        throw new IllegalArgumentException(s"NPY header shape ($shape) has a dimension '$text' that is not a " +
          "non-negative integer")
      }
      val d = BigInt(digits)
      if (d > Int.MaxValue) {
        throw new IllegalArgumentException(s"NPY header shape ($shape) has a dimension of $d, more than a JVM " +
          s"array holds (${Int.MaxValue})")
      }
      d.toInt
    }
    try elementCount(dims) catch {
      case _: ArithmeticException => throw new IllegalArgumentException(
        s"NPY header shape ($shape) has more elements than a 64-bit count holds")
    }
    dims
  }

  /** The product of the dimensions (0 when one is 0); ArithmeticException when it does not fit a Long. */
  def elementCount(shape: Seq[Int]): Long =
    if (shape.contains(0)) 0L else shape.foldLeft(1L)((n, d) => Math.multiplyExact(n, d.toLong))

  /** The descr of the same type in little-endian order (`>f4` is `<f4`). */
  def littleEndian(descr: String): String = if (descr.startsWith(">")) "<" + descr.drop(1) else descr

  /**
   * The tensor held by NPY bytes: little-endian, C order (Fortran-ordered or big-endian data is rearranged). The
   * data must be exactly as long as the header says: a truncated cell is an error, never a short tensor. An array
   * whose header claims more than the default [[DecodeLimits]] is refused before anything is allocated.
   */
  def decode(bytes: Array[Byte]): Tensor = decode(bytes, header(bytes), DecodeLimits.Default)

  /** [[decode]] with the header already parsed (see [[NpyHeaderCache]]), under `limits`. */
  def decode(bytes: Array[Byte], h: NpyHeader, limits: DecodeLimits): Tensor = {
    val big = h.descr.startsWith(">")
    val dtype = DType(littleEndian(h.descr))
    val count = h.elementCount
    limits.checkArray(count, dtype.itemSize)
    val expected = count * dtype.itemSize
    val available = bytes.length - h.dataOffset
    if (available != expected) {
      throw new IllegalArgumentException(
        s"NPY data of dtype ${dtype.name} and shape (${h.shape.mkString(", ")}) needs $expected bytes, got $available" +
          (if (available < expected) " (truncated)" else ""))
    }
    var data = java.util.Arrays.copyOfRange(bytes, h.dataOffset, bytes.length)
    if (big) data = swapBytes(data, dtype.itemSize)
    if (h.fortranOrder && h.shape.length > 1) data = fortranToC(data, h.shape, dtype.itemSize)
    Tensor(dtype, h.shape, data)
  }

  /**
   * The elements of a string (`<U`) or bytes (`|S`) NPY array, in C order, with numpy's trailing NULs removed:
   * Petastorm stores string matrices that way.
   */
  def decodeStrings(bytes: Array[Byte]): (Seq[Int], Array[Any]) =
    decodeStrings(bytes, header(bytes), DecodeLimits.Default)

  /** [[decodeStrings]] with the header already parsed, under `limits`. */
  def decodeStrings(bytes: Array[Byte], h: NpyHeader, limits: DecodeLimits): (Seq[Int], Array[Any]) = {
    val kind = h.descr.drop(1).headOption.getOrElse(' ')
    val width = scala.util.Try(h.descr.drop(2).toInt).getOrElse(0)
    if (!(kind == 'U' || kind == 'S') || width < 1) {
      throw new IllegalArgumentException(s"NPY data of descr '${h.descr}' is not a string or bytes array")
    }
    val itemSize = if (kind == 'U') 4L * width else width.toLong
    val elements = h.elementCount
    limits.checkArray(elements, itemSize)
    if (bytes.length - h.dataOffset != elements * itemSize) {
      throw new IllegalArgumentException(s"NPY data of descr '${h.descr}' and shape (${h.shape.mkString(", ")}) " +
        s"needs ${elements * itemSize} bytes, got ${bytes.length - h.dataOffset}")
    }
    // Both fit an Int now: the data holds `elements` items of `itemSize` (at least one) bytes.
    val (count, size) = (elements.toInt, itemSize.toInt)
    val order = if (h.fortranOrder && h.shape.length > 1) cToFortranIndex(h.shape) else (0 until count).toArray
    val values = new Array[Any](count)
    var i = 0
    while (i < count) {
      val start = h.dataOffset + order(i) * size
      var end = start + size
      if (kind == 'U') {
        while (end > start && bytes(end - 1) == 0 && bytes(end - 2) == 0 && bytes(end - 3) == 0 && bytes(end - 4) == 0) end -= 4
        val charset = if (h.descr.startsWith(">")) "UTF-32BE" else "UTF-32LE"
        values(i) = new String(bytes, start, end - start, charset)
      } else {
        while (end > start && bytes(end - 1) == 0) end -= 1
        values(i) = java.util.Arrays.copyOfRange(bytes, start, end)
      }
      i += 1
    }
    (h.shape, values)
  }

  /** For each C-order position, the position of the same index in Fortran order. */
  private def cToFortranIndex(shape: Seq[Int]): Array[Int] = {
    val n = shape.product
    val out = new Array[Int](n)
    val index = new Array[Int](shape.length)
    var c = 0
    while (c < n) {
      var f = 0
      var stride = 1
      var d = 0
      while (d < shape.length) { f += index(d) * stride; stride *= shape(d); d += 1 }
      out(c) = f
      var k = shape.length - 1
      while (k >= 0 && { index(k) += 1; index(k) == shape(k) }) { index(k) = 0; k -= 1 }
      c += 1
    }
    out
  }

  private def swapBytes(data: Array[Byte], size: Int): Array[Byte] = {
    val out = new Array[Byte](data.length)
    var i = 0
    while (i < data.length) {
      var k = 0
      while (k < size) { out(i + k) = data(i + size - 1 - k); k += 1 }
      i += size
    }
    out
  }

  private def fortranToC(data: Array[Byte], shape: Seq[Int], size: Int): Array[Byte] = {
    val out = new Array[Byte](data.length)
    cToFortranIndex(shape).zipWithIndex.foreach { case (f, c) => System.arraycopy(data, f * size, out, c * size, size) }
    out
  }

  private[codec] def hex(bytes: Array[Byte]): String = bytes.take(8).map(b => f"${b & 0xff}%02x").mkString

}

/**
 * Parses NPY headers, remembering the last one: cells of a fixed-shape column all carry the same header bytes, so
 * a byte comparison replaces parsing for all but the first cell. Not thread-safe: one per reader.
 */
final class NpyHeaderCache {
  private var raw: Array[Byte] = Array.emptyByteArray
  private var parsed: NpyHeader = _

  def header(bytes: Array[Byte]): NpyHeader = {
    val n = raw.length
    if (n > 0 && bytes.length >= n && Npy.samePrefix(bytes, raw, n)) parsed
    else {
      val h = Npy.header(bytes)
      raw = java.util.Arrays.copyOfRange(bytes, 0, h.dataOffset)
      parsed = h
      h
    }
  }
}

/**
 * `np.savez_compressed(buf, arr=value)`: a ZIP archive with one DEFLATE member `arr.npy` (Petastorm's
 * `CompressedNdarrayCodec`). The member is found in the archive's central directory and its size checked against
 * the [[DecodeLimits]] before it is inflated; it is never inflated past that size.
 */
object Npz {
  val Member = "arr.npy"

  def encode(tensor: Tensor): Array[Byte] = {
    val buffer = new ByteArrayOutputStream()
    val zip = new ZipOutputStream(buffer)
    zip.setMethod(ZipOutputStream.DEFLATED)
    zip.putNextEntry(new ZipEntry(Member))
    zip.write(Npy.encode(tensor))
    zip.closeEntry()
    zip.close()
    buffer.toByteArray
  }

  def decode(bytes: Array[Byte], limits: DecodeLimits = DecodeLimits.Default): Tensor = {
    val npy = member(bytes, limits)
    Npy.decode(npy, Npy.header(npy), limits)
  }

  /** The NPY bytes of the `arr.npy` member, its size checked against `limits` before it is inflated. */
  def member(bytes: Array[Byte], limits: DecodeLimits): Array[Byte] = {
    val members = ZipArchive.members(bytes)
    if (members.isEmpty) {
      throw new IllegalArgumentException(s"not a compressed ndarray (no ZIP member in ${bytes.length} bytes " +
        s"starting ${Npy.hex(bytes)})")
    }
    // The last entry of the name, as Python's zipfile finds it.
    val arr = members.reverseIterator.find(_.name == Member).getOrElse(throw new IllegalArgumentException(
      s"compressed ndarray member is ${members.map(m => s"'${m.name}'").mkString(", ")}, expected '$Member'"))
    limits.checkZipMember(arr.name, arr.size)
    ZipArchive.read(bytes, arr)
  }
}
