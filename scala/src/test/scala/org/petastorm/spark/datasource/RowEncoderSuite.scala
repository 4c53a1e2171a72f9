package org.petastorm.spark.datasource

import org.apache.spark.ml.linalg.{SQLDataTypes, Vector, Vectors}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{GenericInternalRow, UnsafeArrayData}
import org.apache.spark.sql.types._
import org.apache.spark.unsafe.types.UTF8String
import org.petastorm.spark.codec.{ImageCodec, Npy, Npz}
import org.petastorm.spark.format.{FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{DType, Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

/** RowEncoder: rows of the written DataFrame to rows of the storage schema, with the statistics it records. */
class RowEncoderSuite extends AnyFunSuite {
  private def encoder(fields: Seq[StructField], options: (String, String)*): RowEncoder =
    WritePlan(StructType(fields), ColumnWriteOptions(options.toMap)).encoder()

  private def row(values: Any*): InternalRow = new GenericInternalRow(values.toArray)

  private def stats(e: RowEncoder): Map[String, ColumnStats] = ColumnStats.fromJson(e.statsJson)

  private def vector(v: Vector): InternalRow =
    SQLDataTypes.VectorType.asInstanceOf[UserDefinedType[Vector]].serialize(v).asInstanceOf[InternalRow]

  private val image = Tensor(DType.UInt8, Seq(4, 5, 3), Array.tabulate(60)(i => (i * 4).toByte))

  test("tensor cells become NPY bytes; other cells and nulls pass unchanged") {
    val e = encoder(Seq(StructField("id", IntegerType), StructField("name", StringType), StructField("t", TensorUDT())))
    val t = Tensor.fromFloats(Seq(2, 3), Array(1f, 2f, 3f, 4f, 5f, 6f))
    val out = e.encode(row(7, UTF8String.fromString("a"), TensorUDT.write(t)))
    assert(out.numFields == 3 && out.getInt(0) == 7 && out.getUTF8String(1).toString == "a")
    assert(out.getBinary(2).sameElements(Npy.encode(t)) && Npy.decode(out.getBinary(2)) == t)
    val nulls = e.encode(row(null, null, null))
    assert((0 until 3).forall(nulls.isNullAt))
  }

  test("the statistics record each tensor column's dtype and the dimensions every row agreed on") {
    val e = encoder(Seq(StructField("t", TensorUDT()), StructField("n", TensorUDT())))
    assert(stats(e).isEmpty)
    e.encode(row(TensorUDT.write(Tensor.fromInts(Seq(2, 3), new Array[Int](6))), null))
    assert(stats(e) == Map("t" -> ColumnStats("int32", Seq(Some(2), Some(3)))))
    e.encode(row(TensorUDT.write(Tensor.fromInts(Seq(2, 5), new Array[Int](10))), null))
    assert(stats(e) == Map("t" -> ColumnStats("int32", Seq(Some(2), None))))
    val mixed = intercept[IllegalArgumentException](e.encode(row(TensorUDT.write(Tensor.fromFloats(Seq(2, 3),
      new Array[Float](6))), null)))
    assert(mixed.getMessage == "Column 't' holds both int32 and float32 tensors; a Petastorm field has one dtype")
  }

  test("codec.<col> chooses compressed_ndarray, png or jpeg bytes") {
    val e = encoder(Seq(StructField("a", TensorUDT()), StructField("b", TensorUDT()), StructField("c", TensorUDT())),
      "codec.a" -> "compressed_ndarray", "codec.b" -> "png", "codec.c" -> "jpeg:95")
    val t = Tensor.fromDoubles(Seq(3), Array(1.0, 2.5, -3.0))
    val out = e.encode(row(TensorUDT.write(t), TensorUDT.write(image), TensorUDT.write(image)))
    assert(Npz.decode(out.getBinary(0)) == t)
    assert(ImageCodec.formatOf(out.getBinary(1)).contains("png") && ImageCodec.decode(out.getBinary(1)) == image)
    assert(ImageCodec.formatOf(out.getBinary(2)).contains("jpeg") && ImageCodec.decode(out.getBinary(2)).shape == image.shape)
    val notImage = intercept[IllegalArgumentException](
      encoder(Seq(StructField("b", TensorUDT())), "codec.b" -> "png").encode(row(TensorUDT.write(t))))
    assert(notImage.getMessage.startsWith("Column 'b': Cannot encode a tensor of shape (3)"))
  }

  test("Spark ML vectors, dense and sparse, become float64 tensors of their size") {
    val e = encoder(Seq(StructField("v", SQLDataTypes.VectorType)))
    val dense = e.encode(row(vector(Vectors.dense(1.0, -2.0, 3.5))))
    assert(Npy.decode(dense.getBinary(0)) == Tensor.fromDoubles(Seq(3), Array(1.0, -2.0, 3.5)))
    val sparse = e.encode(row(vector(Vectors.sparse(5, Array(1, 4), Array(2.0, 7.0)))))
    assert(Npy.decode(sparse.getBinary(0)) == Tensor.fromDoubles(Seq(5), Array(0.0, 2.0, 0.0, 0.0, 7.0)))
    assert(stats(e) == Map("v" -> ColumnStats("float64", Seq(None))))
  }

  test("arrays given shape.<col> become tensors of that shape and of dtype.<col>") {
    val e = encoder(Seq(StructField("a", ArrayType(IntegerType)), StructField("plain", ArrayType(IntegerType))),
      "shape.a" -> "2,-1", "dtype.a" -> "int16")
    val out = e.encode(row(UnsafeArrayData.fromPrimitiveArray(Array(1, 2, 3, 4, 5, 6)),
      UnsafeArrayData.fromPrimitiveArray(Array(9))))
    assert(Npy.decode(out.getBinary(0)) == Tensor.fromShorts(Seq(2, 3), Array[Short](1, 2, 3, 4, 5, 6)))
    assert(out.getArray(1).toIntArray().toSeq == Seq(9))
    val wrong = intercept[IllegalArgumentException](e.encode(row(UnsafeArrayData.fromPrimitiveArray(Array(1, 2, 3)), null)))
    assert(wrong.getMessage == "Column 'a': Shape (2, -1) needs a multiple of 2 elements, got 3")
  }

  test("a binary column of image files is checked against its codec and stored as it is") {
    val e = encoder(Seq(StructField("img", BinaryType)), "codec.img" -> "png")
    val png = ImageCodec.encode(image, "png")
    val out = e.encode(row(png))
    assert(out.getBinary(0) eq png)
    assert(stats(e) == Map("img" -> ColumnStats("uint8", Seq(Some(4), Some(5), Some(3)))))
    val jpeg = intercept[IllegalArgumentException](e.encode(row(ImageCodec.encode(image, "jpeg"))))
    assert(jpeg.getMessage == "Column 'img': codec.png expects PNG files, got JPEG")
    val junk = intercept[IllegalArgumentException](e.encode(row(Array[Byte](1, 2, 3))))
    assert(junk.getMessage == "Column 'img': codec.png expects PNG files, got 3 bytes that are no image")
  }

  test("a null in a column that is not nullable fails naming the column") {
    val e = encoder(Seq(StructField("n", IntegerType, nullable = false), StructField("t", TensorUDT(), nullable = false)))
    assert(intercept[IllegalArgumentException](e.encode(row(null, TensorUDT.write(image)))).getMessage ==
      "Column 'n' holds a null, but it is not nullable")
    assert(intercept[IllegalArgumentException](e.encode(row(1, null))).getMessage ==
      "Column 't' holds a null, but it is not nullable")
  }

  test("in an append, tensors must fit the stored field and nulls its nullability") {
    val stored = Unischema("S", Seq(
      UnischemaField("n", "int32", Nil, Some(FieldCodec.Scalar(IntegerType)), nullable = false),
      UnischemaField("t", "float32", Seq(None, Some(3)), Some(FieldCodec.Ndarray), nullable = true)))
    val e = WritePlan(StructType(Seq(StructField("n", IntegerType), StructField("t", TensorUDT()))),
      ColumnWriteOptions(Map.empty), Some(stored)).encoder()
    e.encode(row(1, TensorUDT.write(Tensor.fromFloats(Seq(4, 3), new Array[Float](12)))))
    e.encode(row(2, null))
    val wrong = intercept[IllegalArgumentException](e.encode(row(3, TensorUDT.write(Tensor.fromFloats(Seq(4, 2),
      new Array[Float](8))))))
    assert(wrong.getMessage == "Column 't': the dataset stores float32 tensors of shape (None, 3); this row holds a " +
      "float32 tensor of shape (4, 2)")
    assert(intercept[IllegalArgumentException](e.encode(row(null, null))).getMessage ==
      "Column 'n' holds a null, but the dataset stores it as non-nullable")
  }
}
