package org.petastorm.spark.image

import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

/** ImageResize: bilinear resize of image tensors. */
class ImageResizeSuite extends AnyFunSuite {
  private def ints(t: Tensor): Seq[Int] = t.toIntArray.toSeq

  test("resize is bilinear on pixel centres, clamped at the edges") {
    val row = Tensor(DType.UInt8, Seq(1, 2), Array[Byte](0, 100))
    assert(ints(ImageResize.resize(row, 1, 4)) == Seq(0, 25, 75, 100))
    val four = Tensor(DType.UInt8, Seq(1, 4, 1), Array[Byte](0, 10, 20, 30))
    val half = ImageResize.resize(four, 1, 2)
    assert(half.shape == Seq(1, 2, 1) && ints(half) == Seq(5, 25))
    val square = Tensor(DType.UInt16, Seq(2, 2), Array(0, 0, 0x10, 0x27, 0x20, 0x4e, 0x30, 0x75).map(_.toByte))
    assert(ints(ImageResize.resize(square, 3, 3)) == Seq(0, 5000, 10000, 10000, 15000, 20000, 20000, 25000, 30000))
    assert(ImageResize.resize(four, 1, 4) eq four)
    val rgb = Tensor(DType.UInt8, Seq(2, 2, 3), Array.tabulate(12)(i => (i * 20).toByte))
    assert(ImageResize.resize(rgb, 4, 6).shape == Seq(4, 6, 3))
    assert(intercept[IllegalArgumentException](ImageResize.resize(rgb, 0, 3)).getMessage.contains("0 x 3"))
    assert(intercept[IllegalArgumentException](ImageResize.resize(rgb.astype(DType.Float32), 2, 3)).getMessage
      .contains("Cannot resize a float32 image"))
  }

  test("a 2 x 2 image shrunk to one pixel is the mean of its four, rounded; what is no image is refused") {
    val grey = Tensor(DType.UInt8, Seq(2, 2), Array[Byte](10, 20, 30, 41))
    assert(ImageResize.resize(grey, 1, 1) == Tensor(DType.UInt8, Seq(1, 1), Array[Byte](25)))
    val rgba = Tensor(DType.UInt8, Seq(1, 2, 4), Array(0, 10, 100, 255, 2, 20, 200, 255).map(_.toByte))
    assert(ImageResize.resize(rgba, 1, 1).toIntArray.toSeq == Seq(1, 15, 150, 255))
    assert(intercept[IllegalArgumentException](ImageResize.resize(Tensor(DType.UInt8, Seq(2, 2, 2), new Array[Byte](8)),
      1, 1)).getMessage == "Cannot resize a tensor of shape (2, 2, 2): expected (H, W) or (H, W, C) with C = 1, 3 or 4")
    assert(intercept[IllegalArgumentException](ImageResize.resize(Tensor(DType.UInt8, Seq(0, 2), Array.emptyByteArray),
      1, 1)).getMessage == "Cannot resize an empty image of 0 x 2 pixels")
  }
}
