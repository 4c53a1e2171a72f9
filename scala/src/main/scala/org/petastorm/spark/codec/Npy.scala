package org.petastorm.spark.codec

import java.io.{ByteArrayInputStream, ByteArrayOutputStream}
import java.nio.charset.StandardCharsets.{ISO_8859_1, US_ASCII}
import java.util.zip.{ZipEntry, ZipInputStream, ZipOutputStream}

import org.petastorm.spark.tensor.{DType, Tensor}

/** A parsed NPY header: the array-protocol descr, Fortran order, the shape and where the data starts. */
final case class NpyHeader(descr: String, fortranOrder: Boolean, shape: Seq[Int], dataOffset: Int)

/**
 * The NPY format (what `np.save` writes, version 1.0): magic, version, header length, a Python dict literal padded
 * with spaces to a 64-byte boundary and ending in a newline, then the C-order data. Petastorm's `NdarrayCodec`
 * stores exactly these bytes.
 */
object Npy {
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
    val (length, start) = major match {
      case 1 => ((bytes(8) & 0xff) | (bytes(9) & 0xff) << 8, 10)
      case 2 | 3 if bytes.length >= 12 =>
        ((bytes(8) & 0xff) | (bytes(9) & 0xff) << 8 | (bytes(10) & 0xff) << 16 | (bytes(11) & 0xff) << 24, 12)
      case _ => throw new IllegalArgumentException(s"unsupported NPY version $major.${bytes(7)}")
    }
    if (start + length > bytes.length) {
      throw new IllegalArgumentException(s"truncated NPY header: needs ${start + length} bytes, got ${bytes.length}")
    }
    val text = new String(bytes, start, length, if (major == 3) java.nio.charset.StandardCharsets.UTF_8 else ISO_8859_1)
    text.trim match {
      case HeaderPattern(descr, fortran, shape) =>
        val dims = shape.split(",").map(_.trim).filter(_.nonEmpty).map(_.stripSuffix("L").toInt).toSeq
        NpyHeader(descr, fortran == "True", dims, start + length)
      case other => throw new IllegalArgumentException(s"unreadable NPY header: $other")
    }
  }

  /**
   * The tensor held by NPY bytes: little-endian, C order (Fortran-ordered or big-endian data is rearranged). The
   * data must be exactly as long as the header says: a truncated cell is an error, never a short tensor.
   */
  def decode(bytes: Array[Byte]): Tensor = decode(bytes, header(bytes))

  /** [[decode]] with the header already parsed (see [[HeaderCache]]). */
  def decode(bytes: Array[Byte], h: NpyHeader): Tensor = {
    val big = h.descr.startsWith(">")
    val dtype = DType(if (big) "<" + h.descr.drop(1) else h.descr)
    val count = h.shape.foldLeft(1L)(_ * _)
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
  def decodeStrings(bytes: Array[Byte]): (Seq[Int], Array[Any]) = {
    val h = header(bytes)
    val kind = h.descr.drop(1).headOption.getOrElse(' ')
    val width = scala.util.Try(h.descr.drop(2).toInt).getOrElse(-1)
    if (!(kind == 'U' || kind == 'S') || width < 0) {
      throw new IllegalArgumentException(s"NPY data of descr '${h.descr}' is not a string or bytes array")
    }
    val itemSize = if (kind == 'U') 4 * width else width
    val count = h.shape.foldLeft(1L)(_ * _).toInt
    if (bytes.length - h.dataOffset != count.toLong * itemSize) {
      throw new IllegalArgumentException(s"NPY data of descr '${h.descr}' and shape (${h.shape.mkString(", ")}) " +
        s"needs ${count.toLong * itemSize} bytes, got ${bytes.length - h.dataOffset}")
    }
    val order = if (h.fortranOrder && h.shape.length > 1) cToFortranIndex(h.shape) else (0 until count).toArray
    val values = new Array[Any](count)
    var i = 0
    while (i < count) {
      val start = h.dataOffset + order(i) * itemSize
      var end = start + itemSize
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
    if (n > 0 && bytes.length >= n && java.util.Arrays.equals(bytes, 0, n, raw, 0, n)) parsed
    else {
      val h = Npy.header(bytes)
      raw = java.util.Arrays.copyOfRange(bytes, 0, h.dataOffset)
      parsed = h
      h
    }
  }
}

/** `np.savez_compressed(buf, arr=value)`: a ZIP archive with one DEFLATE member `arr.npy` (Petastorm's
 * `CompressedNdarrayCodec`). */
object Npz {
  def encode(tensor: Tensor): Array[Byte] = {
    val buffer = new ByteArrayOutputStream()
    val zip = new ZipOutputStream(buffer)
    zip.setMethod(ZipOutputStream.DEFLATED)
    zip.putNextEntry(new ZipEntry("arr.npy"))
    zip.write(Npy.encode(tensor))
    zip.closeEntry()
    zip.close()
    buffer.toByteArray
  }

  def decode(bytes: Array[Byte]): Tensor = {
    val zip = new ZipInputStream(new ByteArrayInputStream(bytes))
    try {
      val entry = zip.getNextEntry
      if (entry == null) {
        throw new IllegalArgumentException(s"not a compressed ndarray (no ZIP member in ${bytes.length} bytes " +
          s"starting ${Npy.hex(bytes)})")
      }
      if (entry.getName != "arr.npy") {
        throw new IllegalArgumentException(s"compressed ndarray member is '${entry.getName}', expected 'arr.npy'")
      }
      Npy.decode(zip.readAllBytes())
    } finally zip.close()
  }
}
