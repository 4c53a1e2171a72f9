package org.petastorm.spark.codec

import java.awt.Transparency
import java.awt.color.ColorSpace
import java.awt.image._
import java.io.{ByteArrayInputStream, ByteArrayOutputStream, IOException}
import javax.imageio.{IIOImage, ImageIO, ImageReadParam, ImageReader, ImageTypeSpecifier, ImageWriteParam}
import javax.imageio.stream.{MemoryCacheImageInputStream, MemoryCacheImageOutputStream}

import scala.jdk.CollectionConverters._

import org.petastorm.spark.tensor.{DType, Tensor}

/**
 * Image files to tensors and back, through `javax.imageio`.
 *
 * Decoding reads PNG, JPEG, BMP and GIF (the first frame) into an `(H, W, C)` tensor in RGB order: uint8, or uint16
 * for 16-bit PNG. The natural channel count is 1 for grey, 3 for colour and 4 when the image has alpha (grey with
 * alpha becomes RGBA; palette images are expanded, to grey when the palette is the grey ramp of its bit depth).
 * Samples are the file's own values: no colour-space or gamma conversion, so PNG pixels equal what Pillow and
 * OpenCV decode. Every call uses its own reader and writer, so the codec is safe to use from many threads. An image
 * whose header claims more pixels than the [[DecodeLimits]] allow is refused before its pixels are allocated: the PNG
 * fast path reads IHDR, ImageIO's readers read the size from the header (JPEG SOF, GIF, BMP) before decoding.
 */
object ImageCodec {
  // Streams over byte arrays stay in memory: no temporary files per image.
  ImageIO.setUseCache(false)

  private val Signatures: Seq[(String, Array[Int])] = Seq(
    "png" -> Array(0x89, 'P', 'N', 'G'), "jpeg" -> Array(0xff, 0xd8, 0xff), "gif" -> Array('G', 'I', 'F', '8'),
    "bmp" -> Array('B', 'M'))

  /** Decodes an image into `(H, W, C)`; `channels` (1, 3 or 4) converts to grey, RGB or RGBA. */
  def decode(bytes: Array[Byte], channels: Option[Int] = None, limits: DecodeLimits = DecodeLimits.Default): Tensor = {
    channels.foreach(checkChannels)
    val pixels = PngFastPath.decode(bytes, limits).getOrElse(Pixels.of(read(bytes, limits)))
    pixels.withBands(channels.getOrElse(if (pixels.bands == 2) 4 else pixels.bands)).tensor
  }

  /**
   * Decodes the value of an image field of `shape` the way Petastorm's `CompressedImageCodec` returns it: `(H, W)`
   * for a grey field (rank 2), `(H, W, C)` for a field whose last dimension is C (-1: the image's own channels).
   */
  def decodeForField(bytes: Array[Byte], shape: Seq[Int], limits: DecodeLimits = DecodeLimits.Default): Tensor =
    shape match {
      case Seq(_, _) => val t = decode(bytes, Some(1), limits); t.reshape(t.shape.take(2))
      case Seq(_, _, -1) => decode(bytes, None, limits)
      case Seq(_, _, c) => decode(bytes, Some(c), limits)
      case _ => throw new IllegalArgumentException(
        s"An image field has shape (H, W) or (H, W, C), got (${shape.mkString(", ")})")
    }

  /**
   * Encodes a uint8 tensor of shape `(H, W)`, `(H, W, 1)`, `(H, W, 3)` (RGB) or `(H, W, 4)` (RGBA, PNG only), or a
   * uint16 one (PNG only), as `png` or `jpeg` (also `jpg`). `quality` (1 to 100) is JPEG's, on libjpeg's scale.
   */
  def encode(tensor: Tensor, format: String, quality: Int = 80): Array[Byte] = {
    val fmt = formatName(format)
    val (h, w, c) = imageDims(tensor, "encode")
    if (tensor.dtype != DType.UInt8 && !(tensor.dtype == DType.UInt16 && fmt == "png")) {
      throw new IllegalArgumentException(
        s"Cannot encode a ${tensor.dtype.name} tensor as $fmt: expected uint8${if (fmt == "png") " or uint16" else ""}")
    }
    if (fmt == "jpeg" && c == 4) {
      throw new IllegalArgumentException("JPEG has no alpha channel: encode an (H, W, 4) tensor as png")
    }
    if (quality < 1 || quality > 100) throw new IllegalArgumentException(s"JPEG quality must be 1 to 100, got $quality")
    if (h == 0 || w == 0) throw new IllegalArgumentException(s"Cannot encode an empty image of $h x $w pixels")
    val writer = ImageIO.getImageWritersByFormatName(fmt).next()
    val out = new ByteArrayOutputStream()
    val stream = new MemoryCacheImageOutputStream(out)
    try {
      val param = writer.getDefaultWriteParam
      if (fmt == "jpeg") {
        param.setCompressionMode(ImageWriteParam.MODE_EXPLICIT)
        param.setCompressionQuality(quality / 100f)
      }
      writer.setOutput(stream)
      writer.write(null, new IIOImage(bufferedImage(tensor, h, w, c), null, null), param)
    } finally {
      stream.close()
      writer.dispose()
    }
    out.toByteArray
  }

  private def checkChannels(c: Int): Unit =
    if (c != 1 && c != 3 && c != 4) throw new IllegalArgumentException(s"channels must be 1, 3 or 4, got $c")

  private def formatName(format: String): String = Option(format).map(_.trim.toLowerCase) match {
    case Some("png") => "png"
    case Some("jpeg" | "jpg") => "jpeg"
    case _ => throw new IllegalArgumentException(s"Unknown image format '$format': expected png or jpeg")
  }

  /** `(H, W, C)` of an image tensor of shape `(H, W)` or `(H, W, C)`; else an error saying what cannot be done. */
  private[spark] def imageDims(t: Tensor, what: String): (Int, Int, Int) = t.shape match {
    case Seq(h, w) => (h, w, 1)
    case Seq(h, w, c) if c == 1 || c == 3 || c == 4 => (h, w, c)
    case s => throw new IllegalArgumentException(
      s"Cannot $what a tensor of shape (${s.mkString(", ")}): expected (H, W) or (H, W, C) with C = 1, 3 or 4")
  }

  /** The file format the bytes start like: `png`, `jpeg`, `gif` or `bmp`. */
  def formatOf(bytes: Array[Byte]): Option[String] = {
    def starts(magic: Array[Int]): Boolean =
      bytes.length >= magic.length && magic.indices.forall(i => (bytes(i) & 0xff) == magic(i))
    Signatures.collectFirst { case (name, magic) if starts(magic) => name }
  }

  private def read(bytes: Array[Byte], limits: DecodeLimits): BufferedImage = {
    val format = formatOf(bytes).getOrElse(
      throw new IllegalArgumentException(s"Expected PNG, JPEG, BMP or GIF data, got ${describe(bytes)}"))
    val reader = ImageIO.getImageReadersByFormatName(format).next()
    val input = new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes))
    try {
      reader.setInput(input, true, true)
      limits.checkImage(reader.getWidth(0), reader.getHeight(0)) // read from the header: nothing decoded yet
      // The largest layout, 16-bit RGBA, takes 8 bytes a pixel; a tensor holds at most Int.MaxValue bytes.
      if (reader.getWidth(0).toLong * reader.getHeight(0) * 8 > Int.MaxValue) {
        throw new IOException(s"${reader.getWidth(0)} x ${reader.getHeight(0)} pixels is too large")
      }
      reader.read(0, readParam(reader))
    } catch {
      case e: DecodeLimitException => throw e
      case e @ (_: IOException | _: RuntimeException) =>
        throw new IllegalArgumentException(
          s"Cannot decode ${format.toUpperCase} data (${describe(bytes)}): ${Option(e.getMessage).getOrElse(e)}", e)
    } finally {
      reader.dispose()
      input.close()
    }
  }

  /**
   * Read parameters choosing, among the image types the reader offers, one equivalent to its default that stores
   * samples in band order (RGB rather than BGR), so that decoding needs no copy.
   */
  private def readParam(reader: ImageReader): ImageReadParam = {
    val param = reader.getDefaultReadParam
    val types = reader.getImageTypes(0).asScala.toList
    def same(a: ImageTypeSpecifier, b: ImageTypeSpecifier) = a.getNumBands == b.getNumBands &&
      a.getSampleModel.getDataType == b.getSampleModel.getDataType &&
      a.getColorModel.getColorSpace.getType == b.getColorModel.getColorSpace.getType &&
      a.getColorModel.hasAlpha == b.getColorModel.hasAlpha && !a.getColorModel.isInstanceOf[IndexColorModel]
    def inBandOrder(t: ImageTypeSpecifier) = t.getSampleModel match {
      case sm: PixelInterleavedSampleModel => sm.getBandOffsets.sameElements(Array.range(0, t.getNumBands))
      case _ => false
    }
    types.headOption.flatMap(default => types.find(t => same(t, default) && inBandOrder(t)))
      .foreach(param.setDestinationType)
    param
  }

  private def describe(bytes: Array[Byte]): String =
    s"${bytes.length} bytes starting with " +
      (if (bytes.isEmpty) "nothing" else bytes.take(8).map(b => f"${b & 0xff}%02x").mkString(" "))

  /** A BufferedImage over the tensor's samples (uint8: the tensor's own array). */
  private def bufferedImage(t: Tensor, h: Int, w: Int, c: Int): BufferedImage = {
    val space = ColorSpace.getInstance(if (c == 1) ColorSpace.CS_GRAY else ColorSpace.CS_sRGB)
    val (dataType, buffer) =
      if (t.dtype == DType.UInt8) (DataBuffer.TYPE_BYTE, new DataBufferByte(t.unsafeData, t.size))
      else {
        val s = new Samples(t.unsafeData, t.dtype)
        (DataBuffer.TYPE_USHORT, new DataBufferUShort(Array.tabulate(t.size)(i => s(i).toShort), t.size))
      }
    val model = new ComponentColorModel(space, c == 4, false,
      if (c == 4) Transparency.TRANSLUCENT else Transparency.OPAQUE, dataType)
    val raster = Raster.createWritableRaster(
      new PixelInterleavedSampleModel(dataType, w, h, c, w * c, Array.range(0, c)), buffer, null)
    new BufferedImage(model, raster, false, null)
  }
}

/** Samples of 8 or 16 bits stored the way a uint8 or uint16 tensor stores them (little-endian). */
private[spark] final class Samples(val data: Array[Byte], dtype: DType) {
  private val wide = dtype == DType.UInt16

  def apply(i: Int): Int = if (wide) (data(2 * i) & 0xff) | (data(2 * i + 1) & 0xff) << 8 else data(i) & 0xff

  def update(i: Int, v: Int): Unit =
    if (wide) { data(2 * i) = v.toByte; data(2 * i + 1) = (v >> 8).toByte } else data(i) = v.toByte
}

/**
 * A decoded image as interleaved samples whose bands are grey, grey + alpha, RGB or RGBA, in the layout of a uint8
 * or uint16 tensor of shape `(height, width, bands)`.
 */
private[codec] final class Pixels(height: Int, width: Int, val bands: Int, dtype: DType, data: Array[Byte]) {
  def tensor: Tensor = Tensor(dtype, Seq(height, width, bands), data)

  /**
   * The same image with `target` channels: 1 = grey (from colour: Pillow's ITU-R 601-2 luma,
   * (19595 R + 38470 G + 7471 B + 32768) >> 16), 3 = RGB, 4 = RGBA (opaque when the image has no alpha).
   */
  def withBands(target: Int): Pixels = if (target == bands) this else {
    val n = height * width
    val max = if (dtype == DType.UInt16) 0xffff else 0xff
    val src = new Samples(data, dtype)
    val dst = new Samples(new Array[Byte](n * target * dtype.itemSize), dtype)
    var p = 0
    while (p < n) {
      val i = p * bands
      val r = src(i)
      val g = if (bands >= 3) src(i + 1) else r
      val b = if (bands >= 3) src(i + 2) else r
      val a = if (bands == 2) src(i + 1) else if (bands == 4) src(i + 3) else max
      val o = p * target
      if (target == 1) {
        dst(o) = if (bands <= 2) r else ((19595L * r + 38470L * g + 7471L * b + 0x8000L) >> 16).toInt
      } else {
        dst(o) = r; dst(o + 1) = g; dst(o + 2) = b
        if (target == 4) dst(o + 3) = a
      }
      p += 1
    }
    new Pixels(height, width, target, dtype, dst.data)
  }
}

private object Pixels {
  def of(image: BufferedImage): Pixels = image.getColorModel match {
    case palette: IndexColorModel => indexed(image.getRaster, palette)
    case model if plainSamples(model) => components(image.getRaster, model)
    case _ => viaRgb(image)
  }

  /** Grey or RGB samples of 8 or 16 bits, which are read as they are. */
  private def plainSamples(model: ColorModel): Boolean = {
    val spaceType = model.getColorSpace.getType
    val bits = model.getComponentSize.distinct
    (spaceType == ColorSpace.TYPE_GRAY || spaceType == ColorSpace.TYPE_RGB) && !model.isAlphaPremultiplied &&
      (bits.sameElements(Array(8)) || model.isInstanceOf[ComponentColorModel] && bits.sameElements(Array(16)))
  }

  private def components(raster: WritableRaster, model: ColorModel): Pixels = {
    val (h, w, bands) = (raster.getHeight, raster.getWidth, raster.getNumBands)
    val dtype = if (model.getComponentSize(0) == 16) DType.UInt16 else DType.UInt8
    def output = new Samples(new Array[Byte](h * w * bands * dtype.itemSize), dtype)
    val samples = (raster.getSampleModel, raster.getDataBuffer) match {
      case (sm: ComponentSampleModel, db: DataBufferByte) if db.getNumBanks == 1 =>
        val data = db.getData
        val base = db.getOffset + origin(raster, sm)
        val packed = sm.getPixelStride == bands && sm.getScanlineStride == w * bands &&
          sm.getBandOffsets.sameElements(Array.range(0, bands)) && base == 0 && data.length == h * w * bands
        if (packed) data else {
          val out = output.data
          val row = rowOffsets(sm, w)
          for (y <- 0 until h) {
            val (from, to) = (base + y * sm.getScanlineStride, y * row.length)
            var j = 0
            while (j < row.length) { out(to + j) = data(from + row(j)); j += 1 }
          }
          out
        }
      case (sm: ComponentSampleModel, db: DataBufferUShort) if db.getNumBanks == 1 =>
        val (data, out) = (db.getData, output)
        val base = db.getOffset + origin(raster, sm)
        val row = rowOffsets(sm, w)
        for (y <- 0 until h) {
          val (from, to) = (base + y * sm.getScanlineStride, y * row.length)
          var j = 0
          while (j < row.length) { out(to + j) = data(from + row(j)) & 0xffff; j += 1 }
        }
        out.data
      case _ =>
        val (band, out) = (new Array[Int](h * w), output)
        for (b <- 0 until bands) {
          raster.getSamples(0, 0, w, h, b, band)
          var p = 0
          while (p < band.length) { out(p * bands + b) = band(p); p += 1 }
        }
        out.data
    }
    new Pixels(h, w, bands, dtype, samples)
  }

  /** Index of the raster's first pixel in its sample model (0 for the root raster a reader returns). */
  private def origin(raster: Raster, sm: ComponentSampleModel): Int =
    (raster.getMinY - raster.getSampleModelTranslateY) * sm.getScanlineStride +
      (raster.getMinX - raster.getSampleModelTranslateX) * sm.getPixelStride

  /** Where each sample of a row, in (column, band) order, lies relative to the row's start. */
  private def rowOffsets(sm: ComponentSampleModel, width: Int): Array[Int] = {
    val (bands, offsets) = (sm.getNumBands, sm.getBandOffsets)
    Array.tabulate(width * bands)(j => (j / bands) * sm.getPixelStride + offsets(j % bands))
  }

  /** Palette images: grey when the palette is the grey ramp of its size, else RGB, or RGBA if an entry has alpha. */
  private def indexed(raster: WritableRaster, palette: IndexColorModel): Pixels = {
    val n = palette.getMapSize
    val rgba = Array.tabulate(n)(palette.getRGB)
    val grey = n > 1 && palette.getTransparency == Transparency.OPAQUE && rgba.indices.forall { i =>
      val v = i * 255 / (n - 1)
      (rgba(i) & 0xffffff) == (v << 16 | v << 8 | v)
    }
    val bands = if (grey) 1 else if (palette.getTransparency == Transparency.OPAQUE) 3 else 4
    val (h, w) = (raster.getHeight, raster.getWidth)
    val indices = raster.getSamples(0, 0, w, h, 0, null: Array[Int])
    val out = new Array[Byte](h * w * bands)
    var p = 0
    while (p < indices.length) {
      val c = rgba(math.min(indices(p), n - 1))
      val o = p * bands
      if (grey) out(o) = c.toByte
      else {
        out(o) = (c >> 16).toByte; out(o + 1) = (c >> 8).toByte; out(o + 2) = c.toByte
        if (bands == 4) out(o + 3) = (c >>> 24).toByte
      }
      p += 1
    }
    new Pixels(h, w, bands, DType.UInt8, out)
  }

  /** Anything else (packed 5/6-bit colour, other colour spaces): 8-bit sRGB through the colour model. */
  private def viaRgb(image: BufferedImage): Pixels = {
    val (h, w) = (image.getHeight, image.getWidth)
    val bands = if (image.getColorModel.hasAlpha) 4 else 3
    val out = new Array[Byte](h * w * bands)
    val row = new Array[Int](w)
    for (y <- 0 until h) {
      image.getRGB(0, y, w, 1, row, 0, w)
      var x = 0
      while (x < w) {
        val c = row(x)
        val o = (y * w + x) * bands
        out(o) = (c >> 16).toByte; out(o + 1) = (c >> 8).toByte; out(o + 2) = c.toByte
        if (bands == 4) out(o + 3) = (c >>> 24).toByte
        x += 1
      }
    }
    new Pixels(h, w, bands, DType.UInt8, out)
  }
}
