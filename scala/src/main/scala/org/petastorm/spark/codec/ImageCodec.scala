package org.petastorm.spark.codec

import java.io.{ByteArrayInputStream, ByteArrayOutputStream}
import javax.imageio.ImageIO

import org.petastorm.spark.tensor.{DType, Tensor}

/** Placeholder until the full image codec lands: 8-bit grey/RGB PNG and JPEG only. */
object ImageCodec {
  def decodeForField(bytes: Array[Byte], shape: Seq[Option[Int]]): Tensor = {
    val image = ImageIO.read(new ByteArrayInputStream(bytes))
    if (image == null) throw new IllegalArgumentException(s"not a PNG or JPEG image (${bytes.length} bytes)")
    val (h, w) = (image.getHeight, image.getWidth)
    val channels = if (shape.length == 2) 1 else 3
    val raster = image.getRaster
    val out = new Array[Byte](h * w * channels)
    val pixel = new Array[Int](raster.getNumBands)
    for (y <- 0 until h; x <- 0 until w) {
      raster.getPixel(x, y, pixel)
      for (c <- 0 until channels) out((y * w + x) * channels + c) = pixel(math.min(c, pixel.length - 1)).toByte
    }
    Tensor(DType.UInt8, if (channels == 1) Seq(h, w) else Seq(h, w, 3), out)
  }

  def encode(tensor: Tensor, format: String, quality: Int): Array[Byte] = {
    val (h, w) = (tensor.shape(0), tensor.shape(1))
    val channels = if (tensor.rank == 2) 1 else tensor.shape(2)
    val kind = if (channels == 1) java.awt.image.BufferedImage.TYPE_BYTE_GRAY else java.awt.image.BufferedImage.TYPE_3BYTE_BGR
    val image = new java.awt.image.BufferedImage(w, h, kind)
    val data = tensor.unsafeData
    val raster = image.getRaster
    for (y <- 0 until h; x <- 0 until w) {
      raster.setPixel(x, y, Array.tabulate(channels)(c => data((y * w + x) * channels + c) & 0xff))
    }
    val out = new ByteArrayOutputStream()
    ImageIO.write(image, format, out)
    out.toByteArray
  }
}
