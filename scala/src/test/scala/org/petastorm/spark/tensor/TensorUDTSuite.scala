package org.petastorm.spark.tensor


import org.apache.spark.sql.Row
import org.apache.spark.sql.types._
import org.petastorm.spark.LocalSpark
import org.scalatest.funsuite.AnyFunSuite

class TensorUDTSuite extends AnyFunSuite with LocalSpark {
  private val tensors = Seq(
    Tensor.fromFloats(Seq(2, 2), Array(1f, 2f, 3f, 4f)),
    Tensor.fromLongs(Seq(), Array(42L)),
    Tensor.fromInts(Seq(0), Array.emptyIntArray),
    Tensor("|u1", Seq(4, 128, 30, 3), Array.tabulate(4 * 128 * 30 * 3)(i => (i % 251).toByte)))

  test("the SQL type is struct<dtype, shape, data> and the UDT is linked to its Python class") {
    val udt = new TensorUDT
    assert(udt.sqlType.simpleString == "struct<dtype:string,shape:array<int>,data:binary>")
    assert(udt.pyUDT == "petastorm.spark.tensor.TensorUDT")
    assert(udt == new TensorUDT && udt.hashCode == new TensorUDT().hashCode)
    assert(DataType.fromJson(udt.json) == udt)
  }

  test("tensor columns survive a DataFrame round trip") {
    val df = spark.createDataFrame(spark.sparkContext.parallelize(tensors.zipWithIndex.map { case (t, i) => Row(i, t) }),
      StructType(Seq(StructField("id", IntegerType), StructField("t", new TensorUDT))))
    assert(df.schema("t").dataType == new TensorUDT)
    val back = df.orderBy("id").collect().map(_.getAs[Tensor]("t")).toSeq
    assert(back == tensors)
  }

  test("an annotated Tensor field gets the UDT through encoders") {
    import spark.implicits._
    val ds = Seq(Holder(1, tensors.head)).toDS()
    assert(ds.schema("t").dataType == new TensorUDT)
    assert(ds.collect().head.t == tensors.head)
  }

  test("tensor columns round-trip through Parquet") {
    val dir = tempDir("tensor-parquet").resolve("out").toString
    val df = spark.createDataFrame(spark.sparkContext.parallelize(tensors.map(Row(_))),
      StructType(Seq(StructField("t", new TensorUDT))))
    df.write.parquet(dir)
    assert(spark.read.parquet(dir).collect().map(_.getAs[Tensor](0)).toSet == tensors.toSet)
  }

  test("a malformed tensor struct is rejected, never read as a wrong tensor") {
    val row = new TensorUDT().serialize(Tensor.fromInts(Seq(2), Array(1, 2)))
    row.update(1, org.apache.spark.sql.catalyst.util.ArrayData.toArrayData(Array(3)))
    val e = intercept[IllegalArgumentException](new TensorUDT().deserialize(row))
    assert(e.getMessage.contains("needs 12 bytes"))
  }
}

case class Holder(id: Int, t: Tensor)
