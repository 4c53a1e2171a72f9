package org.petastorm.spark

import org.apache.spark.sql.{AnalysisException, SparkSession, SparkTestShims}
import org.petastorm.spark.tensor.{DType, Tensor}
import org.scalatest.funsuite.AnyFunSuite

class SessionFunctionsSuite extends AnyFunSuite with LocalSpark {
  /** A session on the test JVM's SparkContext built without any extension (what a plain `getOrCreate()` without
    * `spark.sql.extensions` gives); the one SparkContext's conf names the extension, hence the constructor. */
  private def sessionWithoutExtension(): SparkSession = SparkTestShims.sessionWithoutExtensions(spark)

  test("reading with format(petastorm) registers the SQL functions in a session built without the extension") {
    val path = tempDir("functions").resolve("data").toString
    spark.sql("SELECT 1 AS id, array_to_tensor(array(1, 2, 3, 4, 5, 6), array(2, 3)) AS t")
      .write.format("petastorm").save(path)
    val plain = sessionWithoutExtension()
    SparkSession.setActiveSession(plain)
    try {
      val e = intercept[AnalysisException](plain.sql("SELECT tensor_shape(array_to_tensor(array(1), array(1)))"))
      assert(SparkTestShims.errorCondition(e) == "UNRESOLVED_ROUTINE", e)
      plain.read.format("petastorm").load(path).createOrReplaceTempView("tensors")
      assert(plain.sql("SELECT tensor_shape(t) FROM tensors").collect().head.getSeq[Int](0) == Seq(2, 3))
      val t = plain.sql("SELECT array_to_tensor(array(1.0, 2.0), array(2))").collect().head.getAs[Tensor](0)
      assert(t.dtype == DType.Float64 && t.shape == Seq(2))
    } finally SparkSession.setActiveSession(spark)
  }

  test("a function the session already has under one of the names is left as it is") {
    val plain = sessionWithoutExtension()
    plain.udf.register("tensor_dtype", (x: Int) => s"mine $x")
    SessionFunctions.register(plain)
    assert(plain.sql("SELECT tensor_dtype(1)").collect().head.getString(0) == "mine 1")
    assert(plain.sql("SELECT tensor_shape(array_to_tensor(array(1, 2), array(2)))").collect().head.getSeq[Int](0) ==
      Seq(2))
  }
}
