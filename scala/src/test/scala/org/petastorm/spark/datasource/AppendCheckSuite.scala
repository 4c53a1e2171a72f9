package org.petastorm.spark.datasource

import org.apache.hadoop.fs.Path
import org.apache.spark.ml.linalg.SQLDataTypes
import org.apache.spark.sql.types._
import org.petastorm.spark.format.{FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.{Tensor, TensorUDT}
import org.scalatest.funsuite.AnyFunSuite

/** AppendCheck: what the driver refuses before an append starts, and what each tensor cell must fit. */
class AppendCheckSuite extends AnyFunSuite {
  private val root = new Path("/data/ds")

  private def stored(fields: UnischemaField*): Unischema = Unischema("S", fields)

  private def refusal(schema: Unischema, fields: Seq[StructField], options: (String, String)*): Option[String] =
    try {
      AppendCheck.columns(root, schema, WritePlan(StructType(fields), ColumnWriteOptions(options.toMap)))
      None
    } catch { case e: IllegalArgumentException => Some(e.getMessage) }

  private val tensor = UnischemaField("t", "float32", Seq(Some(2), Some(3)), Some(FieldCodec.Ndarray), nullable = true)

  test("tensor columns: codec, and the dtype and shape the plan knows, must match the stored field") {
    assert(refusal(stored(tensor), Seq(StructField("t", TensorUDT()))).isEmpty)
    assert(refusal(stored(tensor), Seq(StructField("t", SQLDataTypes.VectorType))).contains(
      "Cannot append to /data/ds: column 't' is stored as float32 (2, 3) with codec ndarray; the new data has float64 tensors"))
    assert(refusal(stored(tensor), Seq(StructField("t", ArrayType(FloatType))), "shape.t" -> "2,4").contains(
      "Cannot append to /data/ds: column 't' is stored as float32 (2, 3) with codec ndarray; the new data has tensors of shape (2, 4)"))
    assert(refusal(stored(tensor), Seq(StructField("t", ArrayType(FloatType))), "shape.t" -> "-1,3").isEmpty)
    assert(refusal(stored(tensor), Seq(StructField("t", TensorUDT())), "codec.t" -> "compressed_ndarray").contains(
      "Cannot append to /data/ds: column 't' is stored as float32 (2, 3) with codec ndarray; the new data has codec compressed_ndarray"))
  }

  test("scalar columns: the Spark type decides; a stored field without a codec compares dtypes") {
    val withCodec = UnischemaField("n", "uint16", Nil, Some(FieldCodec.Scalar(IntegerType)), nullable = false)
    assert(refusal(stored(withCodec), Seq(StructField("n", IntegerType))).isEmpty)
    assert(refusal(stored(withCodec), Seq(StructField("n", ShortType))).contains(
      "Cannot append to /data/ds: column 'n' is stored as uint16 with codec scalar(int); the new data has int16 with codec scalar(smallint)"))
    val plain = UnischemaField("n", "int32", Nil, None, nullable = false)
    assert(refusal(stored(plain), Seq(StructField("n", IntegerType))).isEmpty)
    assert(refusal(stored(plain), Seq(StructField("n", LongType))).isDefined)
    val list = UnischemaField("l", "int32", Seq(None), None, nullable = true)
    assert(refusal(stored(list), Seq(StructField("l", ArrayType(IntegerType)))).isEmpty)
    assert(refusal(stored(list), Seq(StructField("l", ArrayType(ArrayType(IntegerType))))).contains(
      "Cannot append to /data/ds: column 'l' is stored as int32 (None,) with codec none; the new data has int32 (None, None) with codec none"))
  }

  test("the columns must be the stored ones") {
    val n = UnischemaField("n", "int32", Nil, Some(FieldCodec.Scalar(IntegerType)), nullable = false)
    assert(refusal(stored(n, tensor), Seq(StructField("n", IntegerType))).contains(
      "Cannot append to /data/ds: the new data lacks t"))
    assert(refusal(stored(n), Seq(StructField("n", IntegerType), StructField("x", IntegerType))).contains(
      "Cannot append to /data/ds: column 'x' is not in the dataset (columns: n)"))
  }

  test("a cell fits a stored field of its dtype and rank whose fixed dimensions it has") {
    val ragged = tensor.copy(shape = Seq(None, Some(3)))
    AppendCheck.cell(ragged, Tensor.fromFloats(Seq(5, 3), new Array[Float](15)))
    val e = intercept[IllegalArgumentException](AppendCheck.cell(ragged, Tensor.fromFloats(Seq(5, 4), new Array[Float](20))))
    assert(e.getMessage == "the dataset stores float32 tensors of shape (None, 3); this row holds a float32 tensor of shape (5, 4)")
  }
}
