package org.petastorm.spark.codec

import java.awt.Transparency
import java.awt.color.ColorSpace
import java.awt.image._
import java.io.ByteArrayOutputStream
import javax.imageio.ImageIO

import scala.concurrent.{Await, Future}
import scala.concurrent.ExecutionContext.Implicits.global
import scala.concurrent.duration._

import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

/** ImageCodec: image files to tensors and back (decode, channel conversion, encode, errors). */
class ImageCodecSuite extends AnyFunSuite {
  private val (h, w) = (5, 7)

  private def write(image: BufferedImage, format: String): Array[Byte] = {
    val out = new ByteArrayOutputStream()
    assert(ImageIO.write(image, format, out), s"no $format writer for this image")
    out.toByteArray
  }

  /** A distinct colour for every pixel. */
  private def rgb(x: Int, y: Int): Int = ((x * 37 + y * 11) & 0xff) << 16 | ((y * 53 + 7) & 0xff) << 8 | ((x * y * 13) & 0xff)

  private def rgbImage(kind: Int): BufferedImage = {
    val image = new BufferedImage(w, h, kind)
    for (y <- 0 until h; x <- 0 until w) image.setRGB(x, y, rgb(x, y) | ((x * 30 + y) & 0xff) << 24)
    image
  }

  private def expectedRgb(alpha: Boolean): Seq[Int] =
    for (y <- 0 until h; x <- 0 until w; c <- if (alpha) 0 to 3 else 0 to 2) yield {
      val argb = rgb(x, y) | ((x * 30 + y) & 0xff) << 24
      (argb >>> (if (c == 3) 24 else 16 - 8 * c)) & 0xff
    }

  private def greyImage(kind: Int, value: (Int, Int) => Int): BufferedImage = {
    val image = new BufferedImage(w, h, kind)
    for (y <- 0 until h; x <- 0 until w) image.getRaster.setSample(x, y, 0, value(x, y))
    image
  }

  private def ints(t: Tensor): Seq[Int] = t.toIntArray.toSeq

  test("8-bit grey PNG decodes to (H, W, 1) with the file's samples") {
    val t = ImageCodec.decode(write(greyImage(BufferedImage.TYPE_BYTE_GRAY, (x, y) => x * 30 + y), "png"))
    assert(t.dtype == DType.UInt8 && t.shape == Seq(h, w, 1))
    assert(ints(t) == (for (y <- 0 until h; x <- 0 until w) yield x * 30 + y))
  }

  test("RGB and RGBA PNG decode in RGB(A) order") {
    val rgbT = ImageCodec.decode(write(rgbImage(BufferedImage.TYPE_INT_RGB), "png"))
    assert(rgbT.shape == Seq(h, w, 3) && ints(rgbT) == expectedRgb(alpha = false))
    val rgbaT = ImageCodec.decode(write(rgbImage(BufferedImage.TYPE_INT_ARGB), "png"))
    assert(rgbaT.shape == Seq(h, w, 4) && ints(rgbaT) == expectedRgb(alpha = true))
  }

  test("channels converts: colour to grey with Pillow's luma, grey to RGB, RGB to opaque RGBA") {
    val bytes = write(rgbImage(BufferedImage.TYPE_INT_RGB), "png")
    val grey = ImageCodec.decode(bytes, Some(1))
    val luma = expectedRgb(alpha = false).grouped(3).map { case Seq(r, g, b) => (19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16 }
    assert(grey.shape == Seq(h, w, 1) && ints(grey) == luma.toSeq)
    val rgba = ImageCodec.decode(bytes, Some(4))
    assert(ints(rgba).grouped(4).map(_.last).forall(_ == 255) && ints(rgba).grouped(4).flatMap(_.take(3)).toSeq ==
      expectedRgb(alpha = false))
    val fromGrey = ImageCodec.decode(write(greyImage(BufferedImage.TYPE_BYTE_GRAY, (x, _) => x), "png"), Some(3))
    assert(ints(fromGrey).grouped(3).forall(p => p.distinct.size == 1))
    assert(intercept[IllegalArgumentException](ImageCodec.decode(bytes, Some(2))).getMessage ==
      "channels must be 1, 3 or 4, got 2")
  }

  test("grey with alpha decodes to RGBA") {
    val model = new ComponentColorModel(ColorSpace.getInstance(ColorSpace.CS_GRAY), true, false,
      Transparency.TRANSLUCENT, DataBuffer.TYPE_BYTE)
    val image = new BufferedImage(model, model.createCompatibleWritableRaster(w, h), false, null)
    for (y <- 0 until h; x <- 0 until w) image.getRaster.setPixel(x, y, Array(x * 10, 255 - y))
    val t = ImageCodec.decode(write(image, "png"))
    assert(t.shape == Seq(h, w, 4))
    assert(ints(t) == (for (y <- 0 until h; x <- 0 until w; v <- Seq(x * 10, x * 10, x * 10, 255 - y)) yield v))
  }

  test("palette PNG and GIF expand to RGB, or RGBA with a transparent entry") {
    val colours = Array(0xff0000, 0x00ff00, 0x123456)
    def paletted(transparent: Int) = {
      val cm = new IndexColorModel(8, 3, colours.map(c => (c >> 16).toByte), colours.map(c => (c >> 8).toByte),
        colours.map(_.toByte), transparent)
      val image = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_INDEXED, cm)
      for (y <- 0 until h; x <- 0 until w) image.getRaster.setSample(x, y, 0, (x + y) % 3)
      image
    }
    val expected = for (y <- 0 until h; x <- 0 until w; c <- 0 to 2) yield (colours((x + y) % 3) >> (16 - 8 * c)) & 0xff
    for (format <- Seq("png", "gif")) {
      val t = ImageCodec.decode(write(paletted(-1), format))
      assert(t.shape == Seq(h, w, 3) && ints(t) == expected, format)
      val withAlpha = ImageCodec.decode(write(paletted(2), format))
      assert(withAlpha.shape == Seq(h, w, 4), format)
      assert(ints(withAlpha).grouped(4).map(_(3)).toSeq ==
        (for (y <- 0 until h; x <- 0 until w) yield if ((x + y) % 3 == 2) 0 else 255), format)
    }
  }

  test("1-bit grey decodes to grey 0 and 255") {
    val t = ImageCodec.decode(write(greyImage(BufferedImage.TYPE_BYTE_BINARY, (x, y) => (x + y) % 2), "png"))
    assert(t.shape == Seq(h, w, 1) && ints(t) == (for (y <- 0 until h; x <- 0 until w) yield 255 * ((x + y) % 2)))
  }

  test("16-bit PNG decodes to uint16, grey and RGB") {
    val grey = ImageCodec.decode(write(greyImage(BufferedImage.TYPE_USHORT_GRAY, (x, y) => x * 9000 + y), "png"))
    assert(grey.dtype == DType.UInt16 && grey.shape == Seq(h, w, 1))
    assert(ints(grey) == (for (y <- 0 until h; x <- 0 until w) yield x * 9000 + y))
    val values = Array.tabulate(h * w * 3)(i => (i * 1021) % 65536)
    val rgb16 = Tensor.fromLongs(DType.UInt16, Seq(h, w, 3), values.map(_.toLong))
    val back = ImageCodec.decode(ImageCodec.encode(rgb16, "png"))
    assert(back == rgb16)
    assert(ImageCodec.decode(ImageCodec.encode(rgb16, "png"), Some(4)).toIntArray.grouped(4).forall(_(3) == 65535))
  }

  test("BMP decodes exactly") {
    val t = ImageCodec.decode(write(rgbImage(BufferedImage.TYPE_3BYTE_BGR), "bmp"))
    assert(t.shape == Seq(h, w, 3) && ints(t) == expectedRgb(alpha = false))
  }

  test("JPEG decodes within a few levels of the source pixels") {
    val (jh, jw) = (32, 48)
    val smooth = Tensor(DType.UInt8, Seq(jh, jw, 3),
      Array.tabulate(jh * jw * 3)(i => ((i / 3 % jw) * 2 + (i / 3 / jw) * 2 + (i % 3) * 20).toByte))
    for ((quality, tolerance) <- Seq(95 -> 6, 80 -> 12)) {
      val back = ImageCodec.decode(ImageCodec.encode(smooth, "jpeg", quality))
      assert(back.shape == Seq(jh, jw, 3))
      val diffs = ints(back).zip(ints(smooth)).map { case (a, b) => math.abs(a - b) }
      assert(diffs.max <= tolerance && diffs.sum.toDouble / diffs.size < 2, s"quality $quality: max ${diffs.max}")
    }
    val greyJpeg = ImageCodec.encode(smooth.reshape(Seq(jh * 3, jw)), "jpg")
    assert(ImageCodec.decode(greyJpeg).shape == Seq(jh * 3, jw, 1))
    assert(ImageCodec.encode(smooth, "jpeg", 30).length < ImageCodec.encode(smooth, "jpeg", 95).length)
  }

  test("PNG encode and decode round trip every uint8 layout") {
    val rng = new scala.util.Random(7)
    for (shape <- Seq(Seq(h, w), Seq(h, w, 1), Seq(h, w, 3), Seq(h, w, 4))) {
      val t = Tensor(DType.UInt8, shape, Array.fill(shape.product)(rng.nextInt(256).toByte))
      val back = ImageCodec.decode(ImageCodec.encode(t, "png"))
      assert(back == (if (shape.length == 2) t.reshape(shape :+ 1) else t), shape)
    }
  }

  test("decodeForField returns (H, W) for grey fields and (H, W, C) for colour fields") {
    val grey = Tensor(DType.UInt8, Seq(h, w), Array.tabulate(h * w)(_.toByte))
    assert(ImageCodec.decodeForField(ImageCodec.encode(grey, "png"), Seq(h, w)) == grey)
    val colour = Tensor(DType.UInt8, Seq(h, w, 3), Array.tabulate(h * w * 3)(_.toByte))
    assert(ImageCodec.decodeForField(ImageCodec.encode(colour, "png"), Seq(-1, -1, 3)) == colour)
    assert(ImageCodec.decodeForField(ImageCodec.encode(colour, "png"), Seq(h, w, -1)) == colour)
    assert(intercept[IllegalArgumentException](ImageCodec.decodeForField(Array[Byte](1), Seq(3))).getMessage
      .contains("An image field has shape (H, W) or (H, W, C), got (3)"))
  }

  test("bad bytes name the expected formats, the length and the first bytes") {
    val e = intercept[IllegalArgumentException](ImageCodec.decode(Array[Byte](0, 1, 2, 3, 4)))
    assert(e.getMessage == "Expected PNG, JPEG, BMP or GIF data, got 5 bytes starting with 00 01 02 03 04")
    assert(intercept[IllegalArgumentException](ImageCodec.decode(Array.emptyByteArray)).getMessage
      .contains("got 0 bytes starting with nothing"))
    val png = ImageCodec.encode(Tensor(DType.UInt8, Seq(h, w), new Array[Byte](h * w)), "png")
    val truncated = intercept[IllegalArgumentException](ImageCodec.decode(png.take(40)))
    assert(truncated.getMessage.startsWith("Cannot decode PNG data (40 bytes starting with 89 50 4e 47 0d 0a 1a 0a): "))
  }

  test("encode rejects what is no image") {
    def message(t: Tensor, format: String) = intercept[IllegalArgumentException](ImageCodec.encode(t, format)).getMessage
    val rgba = Tensor(DType.UInt8, Seq(2, 2, 4), new Array[Byte](16))
    assert(message(rgba, "jpeg").contains("JPEG has no alpha channel"))
    assert(message(rgba, "webp") == "Unknown image format 'webp': expected png or jpeg")
    assert(message(Tensor(DType.UInt8, Seq(2, 2, 2), new Array[Byte](8)), "png")
      .contains("shape (2, 2, 2): expected (H, W) or (H, W, C) with C = 1, 3 or 4"))
    assert(message(Tensor.fromFloats(Seq(2, 2), new Array[Float](4)), "png")
      .contains("Cannot encode a float32 tensor as png: expected uint8 or uint16"))
    assert(message(Tensor(DType.UInt16, Seq(2, 2), new Array[Byte](8)), "jpeg").contains("expected uint8"))
    assert(message(Tensor(DType.UInt8, Seq(0, 2), Array.emptyByteArray), "png").contains("empty image"))
  }

  test("decoding is thread-safe") {
    val images = (1 to 16).map { i =>
      Tensor(DType.UInt8, Seq(40, 30 + i, 3), Array.tabulate(40 * (30 + i) * 3)(j => (j * i).toByte))
    }
    val encoded = images.map(ImageCodec.encode(_, "png"))
    val decoded = Future.sequence((1 to 8).map(_ => Future(encoded.map(ImageCodec.decode(_))))).map(_.distinct)
    assert(Await.result(decoded, 60.seconds) == Seq(images))
  }

  test("an image header claiming more than maxImagePixels is refused before pixels are allocated: PNG and JPEG") {
    val hint = "raise it with the read option maxImagePixels or the session conf spark.petastorm.maxImagePixels if " +
      "the data really needs it"
    for ((bytes, claim) <- Seq(
      CraftedCells.pngClaiming(30000, 30000) -> "30000 x 30000 = 900,000,000",
      CraftedCells.pngClaiming(16000, 16000) -> "16000 x 16000 = 256,000,000",
      CraftedCells.jpegClaiming(30000, 30000) -> "30000 x 30000 = 900,000,000")) {
      assert(bytes.length < 1000)
      assert(intercept[DecodeLimitException](ImageCodec.decode(bytes)).getMessage == s"the image's header claims " +
        s"$claim pixels, over the limit of 89,478,485 (maxImagePixels); $hint")
    }
    // PNG widths are unsigned 32-bit.
    assert(intercept[DecodeLimitException](ImageCodec.decode(CraftedCells.pngClaiming(-1, 2))).getMessage
      .startsWith("the image's header claims 4294967295 x 2 = 8,589,934,590 pixels"))
    assert(intercept[DecodeLimitException](ImageCodec.decodeForField(CraftedCells.pngClaiming(30000, 30000),
      Seq(-1, -1, 3))).getMessage.contains("30000 x 30000"))
  }

  test("maxImagePixels bounds every format, through the PNG fast path or ImageIO's header") {
    val rgb = write(rgbImage(BufferedImage.TYPE_INT_RGB), "png")
    val grey16 = write(greyImage(BufferedImage.TYPE_USHORT_GRAY, (x, y) => x * y), "png")
    val jpeg = ImageCodec.encode(Tensor(DType.UInt8, Seq(h, w, 3), new Array[Byte](h * w * 3)), "jpeg")
    for (bytes <- Seq(rgb, grey16, jpeg, write(rgbImage(BufferedImage.TYPE_3BYTE_BGR), "bmp"),
      write(rgbImage(BufferedImage.TYPE_INT_RGB), "gif"))) {
      val format = ImageCodec.formatOf(bytes).get
      assert(ImageCodec.decode(bytes, None, DecodeLimits(maxImagePixels = h * w)).shape.take(2) == Seq(h, w), format)
      val e = intercept[DecodeLimitException](ImageCodec.decode(bytes, None, DecodeLimits(maxImagePixels = h * w - 1)))
      assert(e.getMessage.startsWith(s"the image's header claims $w x $h = ${w * h} pixels, over the limit of " +
        s"${w * h - 1} (maxImagePixels)"), format)
    }
  }
}
