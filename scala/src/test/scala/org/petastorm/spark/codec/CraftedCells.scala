package org.petastorm.spark.codec

import java.io.ByteArrayOutputStream
import java.nio.{ByteBuffer, ByteOrder}
import java.nio.charset.StandardCharsets.ISO_8859_1
import java.util.zip.{CRC32, Deflater}

import org.petastorm.spark.tensor.{DType, Tensor}

/**
 * Cells of a crafted dataset, built here byte by byte: headers that claim far more than the cell holds (an NPY
 * array of 2 GB in 128 bytes, a PNG or JPEG of 30000 x 30000 pixels in a few hundred) and a real ZIP bomb (a
 * compressed ndarray whose `arr.npy` inflates to 1 GiB from about 1 MB).
 */
object CraftedCells {
  private val Magic = Array[Byte](0x93.toByte, 'N', 'U', 'M', 'P', 'Y')

  /** NPY bytes of `version` whose header holds `dict` (padded to 64 bytes, as numpy pads it), then `data`. */
  def npy(dict: String, data: Array[Byte] = Array.emptyByteArray, version: Int = 1): Array[Byte] = {
    val prefix = Magic.length + 2 + (if (version == 1) 2 else 4)
    val padded = (prefix + dict.length + 1 + 63) / 64 * 64
    val header = (dict + " " * (padded - prefix - dict.length - 1) + "\n").getBytes(ISO_8859_1)
    val length = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(header.length).array()
    Magic ++ Array[Byte](version.toByte, 0) ++ length.take(prefix - 8) ++ header ++ data
  }

  /** An NPY header of 128 bytes claiming 5 * 10^8 float32 elements (2 GB), then 4 of them. */
  def hugeNpy: Array[Byte] =
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (500000000,), }", new Array[Byte](16))

  /** The elements of [[npzBomb]]'s `arr.npy`: 2^28 float32 zeros, 1 GiB. */
  val BombElements: Int = 1 << 28

  /**
   * A compressed ndarray whose `arr.npy` (a 128-byte NPY header, then 1 GiB of float32 zeros) really inflates to
   * 1 GiB + 128 bytes, from about 1 MB: a stored DEFLATE block for the header, then one dynamic-Huffman block whose
   * codes make a 258-byte copy take 2 bits (DEFLATE's best, 1032 to 1). The sizes and CRC are the true ones.
   */
  lazy val npzBomb: Array[Byte] = {
    val header = npy(s"{'descr': '<f4', 'fortran_order': False, 'shape': ($BombElements,), }")
    val zeros = 4L * BombElements
    val deflate = new Bits
    // Stored block (not final) holding the NPY header.
    deflate.bits(0, 1); deflate.bits(0, 2); deflate.align()
    deflate.bits(header.length, 16); deflate.bits(~header.length & 0xffff, 16)
    header.foreach(b => deflate.bits(b & 0xff, 8))
    // Final dynamic block: literal/length codes 0 -> "10", 256 (end) -> "11", 285 (length 258) -> "0"; one
    // distance code, 0 (distance 1) -> "0". Their lengths are sent with code-length codes 18 -> "0", 1 -> "10",
    // 2 -> "11" (RFC 1951, 3.2.7).
    deflate.bits(1, 1); deflate.bits(2, 2)
    deflate.bits(29, 5); deflate.bits(0, 5); deflate.bits(14, 4) // 286 literal/length codes, 1 distance, 18 CL codes
    // Code-length code lengths, in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1.
    Seq(0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2).foreach(deflate.bits(_, 3))
    def zeroRun(n: Int): Unit = { deflate.code(0, 1); deflate.bits(n - 11, 7) } // code 18: 11 to 138 zeros
    deflate.code(3, 2) // symbol 0: length 2
    zeroRun(138); zeroRun(117) // symbols 1 to 255: unused
    deflate.code(3, 2) // symbol 256: length 2
    zeroRun(28) // symbols 257 to 284: unused
    deflate.code(2, 2) // symbol 285: length 1
    deflate.code(2, 2) // distance code 0: length 1
    val literals = 4 // 4 + 258 * n = 2^30
    (0 until literals).foreach(_ => deflate.code(2, 2))
    deflate.zeros(2 * ((zeros - literals) / 258)) // each copy: "0" (length 258) then "0" (distance 1)
    deflate.code(3, 2) // end of block
    deflate.align()
    val data = deflate.bytes
    val crc = new CRC32()
    crc.update(header)
    val block = new Array[Byte](1 << 20)
    (0L until zeros / block.length).foreach(_ => crc.update(block))
    zip(data, crc.getValue, header.length + zeros)
  }

  /**
   * A one-member (`arr.npy`, DEFLATE) ZIP archive of raw DEFLATE `data`, its entries stating `crc` and `size`; with
   * `zip64` the central directory states the sizes in a ZIP64 extra field, as archives of 4 GiB and more do.
   */
  def zip(data: Array[Byte], crc: Long, size: Long, zip64: Boolean = false): Array[Byte] = {
    val name = Npz.Member.getBytes(ISO_8859_1)
    val extra = if (zip64) 20 else 0
    val out = ByteBuffer.allocate(30 + 46 + 22 + 2 * name.length + extra + data.length).order(ByteOrder.LITTLE_ENDIAN)
    def fields(sizes: (Int, Int), extraLength: Int): Unit = {
      out.putShort(0.toShort).putShort(8.toShort).putInt(0) // flags, DEFLATE, time and date
      out.putInt(crc.toInt).putInt(sizes._1).putInt(sizes._2).putShort(name.length.toShort)
      out.putShort(extraLength.toShort)
    }
    out.putInt(0x04034b50).putShort(20.toShort); fields((data.length, size.toInt), 0); out.put(name).put(data)
    val directory = out.position()
    out.putInt(0x02014b50).putShort(45.toShort).putShort(45.toShort)
    fields(if (zip64) (-1, -1) else (data.length, size.toInt), extra)
    out.putShort(0.toShort).putShort(0.toShort).putShort(0.toShort).putInt(0).putInt(0).put(name)
    if (zip64) out.putShort(1.toShort).putShort(16.toShort).putLong(size).putLong(data.length.toLong)
    val directorySize = out.position() - directory
    out.putInt(0x06054b50).putShort(0.toShort).putShort(0.toShort).putShort(1.toShort).putShort(1.toShort)
      .putInt(directorySize).putInt(directory).putShort(0.toShort)
    out.array()
  }

  /** Raw DEFLATE bytes of `bytes`. */
  def deflate(bytes: Array[Byte]): Array[Byte] = {
    val deflater = new Deflater(Deflater.DEFAULT_COMPRESSION, true)
    deflater.setInput(bytes)
    deflater.finish()
    val out = new ByteArrayOutputStream()
    val buffer = new Array[Byte](8192)
    while (!deflater.finished()) out.write(buffer, 0, deflater.deflate(buffer))
    deflater.end()
    out.toByteArray
  }

  def crc32(bytes: Array[Byte]): Long = { val crc = new CRC32(); crc.update(bytes); crc.getValue }

  /** A PNG whose IHDR claims `width` x `height` 8-bit RGB pixels, followed by 64 bytes of image data and IEND. */
  def pngClaiming(width: Int, height: Int): Array[Byte] = {
    def chunk(kind: String, body: Array[Byte]): Array[Byte] = {
      val typed = kind.getBytes(ISO_8859_1) ++ body
      ByteBuffer.allocate(4).putInt(body.length).array() ++ typed ++ ByteBuffer.allocate(4).putInt(crc32(typed).toInt).array()
    }
    val ihdr = ByteBuffer.allocate(13).putInt(width).putInt(height).put(Array[Byte](8, 2, 0, 0, 0)).array()
    val zlib = new Deflater()
    zlib.setInput(new Array[Byte](64)); zlib.finish()
    val idat = new Array[Byte](256)
    val n = zlib.deflate(idat)
    zlib.end()
    Array(0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a).map(_.toByte) ++ chunk("IHDR", ihdr) ++
      chunk("IDAT", idat.take(n)) ++ chunk("IEND", Array.emptyByteArray)
  }

  /** A real 16 x 16 JPEG whose SOF0 segment is changed to claim `width` x `height` pixels. */
  def jpegClaiming(width: Int, height: Int): Array[Byte] = {
    val jpeg = ImageCodec.encode(Tensor(DType.UInt8, Seq(16, 16, 3), new Array[Byte](768)), "jpeg")
    var at = 2 // after SOI: segments of marker, length
    while ((jpeg(at + 1) & 0xff) != 0xc0) at += 2 + ((jpeg(at + 2) & 0xff) << 8 | (jpeg(at + 3) & 0xff))
    ByteBuffer.wrap(jpeg, at + 5, 4).putShort(height.toShort).putShort(width.toShort)
    jpeg
  }

  /** A bit stream written least significant bit first, as DEFLATE writes it. */
  private final class Bits {
    private val out = new ByteArrayOutputStream()
    private var pending = 0L
    private var count = 0

    def bits(value: Int, n: Int): Unit = {
      pending |= (value.toLong & ((1L << n) - 1)) << count
      count += n
      while (count >= 8) { out.write((pending & 0xff).toInt); pending >>>= 8; count -= 8 }
    }

    /** A Huffman code: its bits go most significant first. */
    def code(value: Int, n: Int): Unit = bits(Integer.reverse(value) >>> (32 - n), n)

    def zeros(n: Long): Unit = {
      var left = n
      while (left > 0 && count != 0) { bits(0, 1); left -= 1 }
      out.write(new Array[Byte]((left / 8).toInt))
      (0L until left % 8).foreach(_ => bits(0, 1))
    }

    def align(): Unit = if (count > 0) bits(0, 8 - count)
    def bytes: Array[Byte] = { align(); out.toByteArray }
  }
}
