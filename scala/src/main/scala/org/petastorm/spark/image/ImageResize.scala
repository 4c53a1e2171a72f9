package org.petastorm.spark.image

import org.petastorm.spark.codec.{ImageCodec, Samples}
import org.petastorm.spark.tensor.{DType, Tensor}

/** The resize of `load_image` and `decode_image`'s optional `(height, width)`: bilinear, on image tensors. */
object ImageResize {
  /**
   * Resizes a uint8 or uint16 image of shape `(H, W)` or `(H, W, C)` with bilinear interpolation on pixel centres
   * (source x = (x + 0.5) * W / width - 0.5, clamped at the edges), rounding to the nearest value. This is OpenCV's
   * `INTER_LINEAR` and TensorFlow's `resize(..., antialias=False)`: strong downscaling aliases.
   */
  def resize(t: Tensor, height: Int, width: Int): Tensor = {
    val (h, w, c) = ImageCodec.imageDims(t, "resize")
    if (t.dtype != DType.UInt8 && t.dtype != DType.UInt16) {
      throw new IllegalArgumentException(s"Cannot resize a ${t.dtype.name} image: expected uint8 or uint16")
    }
    if (height <= 0 || width <= 0) throw new IllegalArgumentException(s"Cannot resize to $height x $width pixels")
    if (h == 0 || w == 0) throw new IllegalArgumentException(s"Cannot resize an empty image of $h x $w pixels")
    if (h == height && w == width) return t
    val src = new Samples(t.unsafeData, t.dtype)
    val dst = new Samples(new Array[Byte](height * width * c * t.dtype.itemSize), t.dtype)
    val (x0, x1, fx) = Resampling.axis(w, width)
    val (y0, y1, fy) = Resampling.axis(h, height)
    val n = width * c
    // For each sample of a destination row: its two source samples in a source row, and the second's weight.
    val left = Array.tabulate(n)(i => x0(i / c) * c + i % c)
    val right = Array.tabulate(n)(i => x1(i / c) * c + i % c)
    val weight = Array.tabulate(n)(i => fx(i / c))
    // Source row r resampled horizontally into `out`.
    def horizontal(r: Int, out: Array[Double]): Unit = {
      val base = r * w * c
      var i = 0
      while (i < n) {
        val a = src(base + left(i))
        out(i) = a + (src(base + right(i)) - a) * weight(i)
        i += 1
      }
    }
    // The two resampled source rows that a destination row blends, kept while the next rows use them.
    var (top, bottom) = (new Array[Double](n), new Array[Double](n))
    var (topRow, bottomRow) = (-1, -1)
    var y = 0
    while (y < height) {
      if (y0(y) != topRow) {
        if (y0(y) == bottomRow) { val t = top; top = bottom; bottom = t; bottomRow = -1 } else horizontal(y0(y), top)
        topRow = y0(y)
      }
      if (y1(y) != bottomRow) { horizontal(y1(y), bottom); bottomRow = y1(y) }
      val wy = fy(y)
      var i = 0
      while (i < n) { dst(y * n + i) = math.round(top(i) + (bottom(i) - top(i)) * wy).toInt; i += 1 }
      y += 1
    }
    val shape = if (t.rank == 2) Seq(height, width) else Seq(height, width, c)
    Tensor(t.dtype, shape, dst.data)
  }
}

/** Source positions of bilinear resampling along one axis: the two neighbours and the weight of the second. */
private object Resampling {
  def axis(from: Int, to: Int): (Array[Int], Array[Int], Array[Double]) = {
    val lo = new Array[Int](to); val hi = new Array[Int](to); val weight = new Array[Double](to)
    val scale = from.toDouble / to
    var i = 0
    while (i < to) {
      val s = math.min(math.max((i + 0.5) * scale - 0.5, 0.0), from - 1.0)
      lo(i) = s.toInt
      hi(i) = math.min(lo(i) + 1, from - 1)
      weight(i) = s - lo(i)
      i += 1
    }
    (lo, hi, weight)
  }
}
