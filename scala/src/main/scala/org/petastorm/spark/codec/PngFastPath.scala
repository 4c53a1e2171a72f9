package org.petastorm.spark.codec

import java.util.zip.{DataFormatException, Inflater}

import org.petastorm.spark.tensor.DType

/**
 * Decodes the PNGs that datasets are mostly made of — 8-bit grey, grey + alpha, RGB or RGBA, not interlaced, no
 * palette or transparency chunk — straight from the zlib stream into interleaved samples, several times faster than
 * `javax.imageio` on small images. Anything else (or anything malformed) returns None and goes through ImageIO,
 * which also produces the error messages. An image whose IHDR claims more pixels than the [[DecodeLimits]] allow is
 * refused before anything is allocated.
 */
private object PngFastPath {
  private val Signature = Array(0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a).map(_.toByte)
  private val BandsOfColourType = Map(0 -> 1, 4 -> 2, 2 -> 3, 6 -> 4)

  def decode(bytes: Array[Byte], limits: DecodeLimits = DecodeLimits.Default): Option[Pixels] =
    try parse(bytes, limits) catch {
      case e: DecodeLimitException => throw e
      case _: ArrayIndexOutOfBoundsException | _: DataFormatException | _: IllegalArgumentException => None
    }

  private def int(b: Array[Byte], at: Int): Int =
    (b(at) & 0xff) << 24 | (b(at + 1) & 0xff) << 16 | (b(at + 2) & 0xff) << 8 | (b(at + 3) & 0xff)

  private def parse(bytes: Array[Byte], limits: DecodeLimits): Option[Pixels] = {
    if (bytes.length < 33 || !Npy.samePrefix(bytes, Signature, 8)) return None
    if (int(bytes, 12) != 0x49484452) return None // IHDR first
    val width = int(bytes, 16)
    val height = int(bytes, 20)
    limits.checkImage(width & 0xffffffffL, height & 0xffffffffL) // unsigned, as PNG stores them
    val (depth, colourType, interlace) = (bytes(24) & 0xff, bytes(25) & 0xff, bytes(28) & 0xff)
    val bands = BandsOfColourType.getOrElse(colourType, 0)
    if (depth != 8 || bands == 0 || interlace != 0 || width <= 0 || height <= 0) return None
    val stride = width * bands
    if (stride.toLong * height > Int.MaxValue / 2) return None
    val raw = new Array[Byte]((stride + 1) * height)
    val inflater = new Inflater()
    try {
      var at = 33
      var filled = 0
      var ended = false
      while (!ended) {
        val length = int(bytes, at)
        val kind = int(bytes, at + 4)
        if (length < 0 || at + 12 + length > bytes.length) return None
        kind match {
          case 0x49444154 => // IDAT
            inflater.setInput(bytes, at + 8, length)
            // inflate returns 0 only when it needs input (next IDAT), a dictionary, or is done
            while (!inflater.needsInput() && !inflater.finished() && filled < raw.length) {
              filled += inflater.inflate(raw, filled, raw.length - filled)
              if (inflater.needsDictionary()) return None
            }
          case 0x49454e44 => ended = true // IEND
          case 0x504c5445 | 0x74524e53 => return None // PLTE, tRNS: ImageIO's semantics apply
          case _ =>
        }
        at += 12 + length
      }
      if (filled != raw.length) return None
    } finally inflater.end()
    val out = new Array[Byte](stride * height)
    unfilter(raw, out, height, stride, bands)
    Some(new Pixels(height, width, bands, DType.UInt8, out))
  }

  /** Undoes the per-scanline filters (None, Sub, Up, Average, Paeth) into `out`. */
  private def unfilter(raw: Array[Byte], out: Array[Byte], height: Int, stride: Int, bpp: Int): Unit = {
    var y = 0
    while (y < height) {
      val filter = raw(y * (stride + 1))
      val src = y * (stride + 1) + 1
      val row = y * stride
      val prev = row - stride
      var x = 0
      while (x < stride) {
        val a = if (x >= bpp) out(row + x - bpp) & 0xff else 0
        val b = if (y > 0) out(prev + x) & 0xff else 0
        val value = filter match {
          case 0 => 0
          case 1 => a
          case 2 => b
          case 3 => (a + b) >>> 1
          case 4 =>
            val c = if (y > 0 && x >= bpp) out(prev + x - bpp) & 0xff else 0
            val p = a + b - c
            val (pa, pb, pc) = (math.abs(p - a), math.abs(p - b), math.abs(p - c))
            if (pa <= pb && pa <= pc) a else if (pb <= pc) b else c
          case f => throw new IllegalArgumentException(s"PNG filter $f")
        }
        out(row + x) = (raw(src + x) + value).toByte
        x += 1
      }
      y += 1
    }
  }
}
