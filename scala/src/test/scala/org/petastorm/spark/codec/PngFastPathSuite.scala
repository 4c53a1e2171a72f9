package org.petastorm.spark.codec

import java.io.ByteArrayInputStream
import javax.imageio.ImageIO

import scala.util.Random

import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

class PngFastPathSuite extends AnyFunSuite {
  private def image(h: Int, w: Int, c: Int, smooth: Boolean): Tensor = {
    val rnd = new Random(h * 31 + w * 7 + c)
    val data = Array.tabulate(h * w * c) { i =>
      val (y, x) = (i / (w * c), i / c % w)
      (if (smooth) (x * 3 + y * 5 + i % c * 40) else rnd.nextInt(256)).toByte
    }
    Tensor(DType.UInt8, if (c == 1) Seq(h, w) else Seq(h, w, c), data)
  }

  private def viaImageIO(png: Array[Byte]): Tensor = Pixels.of(ImageIO.read(new ByteArrayInputStream(png))).tensor

  /** The same PNG with its image data split over several IDAT chunks (as large files are). */
  private def splitIdat(png: Array[Byte]): Array[Byte] = {
    def int(at: Int) = java.nio.ByteBuffer.wrap(png, at, 4).getInt
    val out = new java.io.ByteArrayOutputStream()
    out.write(png, 0, 8)
    var at = 8
    while (at < png.length) {
      val length = int(at)
      val kind = new String(png, at + 4, 4, "US-ASCII")
      if (kind == "IDAT" && length > 4) {
        for ((from, to) <- Seq(0 -> length / 3, length / 3 -> length)) {
          val part = java.nio.ByteBuffer.allocate(12 + to - from)
          part.putInt(to - from).put(png, at + 4, 4).put(png, at + 8 + from, to - from).putInt(0)
          out.write(part.array())
        }
      } else out.write(png, at, 12 + length)
      at += 12 + length
    }
    out.toByteArray
  }

  for (c <- Seq(1, 3, 4); smooth <- Seq(true, false); (h, w) <- Seq(1 -> 1, 7 -> 13, 32 -> 32, 64 -> 48)) {
    test(s"$h x $w x $c ${if (smooth) "smooth" else "noisy"} PNG decodes exactly as ImageIO does, also split") {
      val png = ImageCodec.encode(image(h, w, c, smooth), "png")
      val fast = PngFastPath.decode(png)
      assert(fast.isDefined, "the fast path declined a plain 8-bit PNG")
      assert(fast.get.tensor == viaImageIO(png))
      assert(PngFastPath.decode(splitIdat(png)).map(_.tensor) == Some(viaImageIO(png)))
    }
  }

  test("palette, 16-bit and malformed PNGs are left to ImageIO") {
    val wide = ImageCodec.encode(Tensor(DType.UInt16, Seq(4, 4, 3), Array.fill(96)(7.toByte)), "png")
    assert(PngFastPath.decode(wide).isEmpty)
    val png = ImageCodec.encode(image(8, 8, 3, smooth = false), "png")
    assert(PngFastPath.decode(png.take(png.length / 2)).isEmpty)
    assert(PngFastPath.decode(Array[Byte](1, 2, 3)).isEmpty)
  }

  test("an IHDR claiming more than maxImagePixels is refused before anything is allocated, not left to ImageIO") {
    val png = ImageCodec.encode(image(8, 8, 3, smooth = true), "png")
    assert(PngFastPath.decode(png, DecodeLimits(maxImagePixels = 64)).isDefined)
    assert(intercept[DecodeLimitException](PngFastPath.decode(png, DecodeLimits(maxImagePixels = 63))).getMessage
      .startsWith("the image's header claims 8 x 8 = 64 pixels, over the limit of 63 (maxImagePixels)"))
    assert(intercept[DecodeLimitException](PngFastPath.decode(CraftedCells.pngClaiming(16000, 16000))).getMessage
      .startsWith("the image's header claims 16000 x 16000 = 256,000,000 pixels, over the limit of 89,478,485"))
  }
}
