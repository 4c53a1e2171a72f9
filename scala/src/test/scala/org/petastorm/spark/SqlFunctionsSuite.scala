package org.petastorm.spark

import org.apache.spark.sql.{AnalysisException, Row}
import org.apache.spark.sql.types._
import org.petastorm.spark.functions._
import org.petastorm.spark.tensor._
import org.scalatest.funsuite.AnyFunSuite

class SqlFunctionsSuite extends AnyFunSuite with LocalSpark {
  private def one(sql: String): Any = spark.sql(sql).collect().head.get(0)

  private def failure(sql: String): String = {
    val e = intercept[Exception](spark.sql(sql).collect())
    Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
  }

  test("array_to_tensor builds a tensor with the array's element type by default") {
    val t = one("SELECT array_to_tensor(array(1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f), array(2, 3))").asInstanceOf[Tensor]
    assert(t.dtype == DType.Float32 && t.shape == Seq(2, 3))
    assert(t.toFloatArray.toSeq == Seq(1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f))
    assert(one("SELECT tensor_dtype(array_to_tensor(array(1L, 2L), array(2)))") == "int64")
  }

  test("array_to_tensor converts to a given dtype and infers a -1 dimension") {
    val t = one("SELECT array_to_tensor(array(0, 128, 255, 7), array(-1, 2), 'uint8')").asInstanceOf[Tensor]
    assert(t.dtype == DType.UInt8 && t.shape == Seq(2, 2) && t.toIntArray.toSeq == Seq(0, 128, 255, 7))
    assert(one("SELECT tensor_shape(array_to_tensor(array(1.0D), array()))") == Seq())
  }

  test("array_to_tensor takes decimals (SQL's 1.0): float64 by default, or the given dtype") {
    val t = one("SELECT array_to_tensor(array(1.0, 2.0, 3.0, 4.0), array(2, 2))").asInstanceOf[Tensor]
    assert(t.dtype == DType.Float64 && t.shape == Seq(2, 2) && t.toDoubleArrayExact.toSeq == Seq(1.0, 2.0, 3.0, 4.0))
    val mixed = one("SELECT array_to_tensor(array(0.25, 1.5, 2.75), array(3), 'float32')").asInstanceOf[Tensor]
    assert(mixed.dtype == DType.Float32 && mixed.toFloatArray.toSeq == Seq(0.25f, 1.5f, 2.75f))
    val ints = one("SELECT array_to_tensor(array(-2.7, 9223372036854775807.0), array(2), 'int64')").asInstanceOf[Tensor]
    assert(ints.toLongArray.toSeq == Seq(-2L, Long.MaxValue)) // truncated toward zero, exactly
    assert(failure("SELECT array_to_tensor(array(256.5), array(1), 'uint8')").contains("Value 256 at index 0 does not fit uint8"))
  }

  test("tensor_shape, tensor_dtype, tensor_to_array and tensor_reshape") {
    spark.sql("SELECT array_to_tensor(sequence(1, 24), array(2, 3, 4), 'float64') AS t")
      .createOrReplaceTempView("tensors")
    assert(one("SELECT tensor_shape(t) FROM tensors") == Seq(2, 3, 4))
    assert(one("SELECT tensor_dtype(t) FROM tensors") == "float64")
    assert(one("SELECT tensor_to_array(t) FROM tensors") == (1 to 24).map(_.toDouble))
    assert(one("SELECT tensor_to_array(t, 'int16') FROM tensors") == (1 to 24).map(_.toShort))
    assert(one("SELECT tensor_shape(tensor_reshape(t, array(4, -1))) FROM tensors") == Seq(4, 6))
    assert(spark.sql("SELECT tensor_to_array(t, 'int32') AS a FROM tensors").schema("a").dataType ==
      ArrayType(IntegerType, containsNull = false))
  }

  test("DataFrame API wrappers") {
    import spark.implicits._
    val df = Seq(Seq(1.0, 2.0, 3.0, 4.0)).toDF("a").select(array_to_tensor($"a", Seq(2, 2), "float32").as("t"))
    val row = df.select(tensor_shape($"t"), tensor_dtype($"t"), tensor_to_array($"t", "float32")).collect().head
    assert(row == Row(Seq(2, 2), "float32", Seq(1f, 2f, 3f, 4f)))
  }

  test("a null array gives a null tensor") {
    assert(one("SELECT array_to_tensor(CAST(NULL AS array<int>), array(2))") == null)
  }

  test("a wrong element count says what was expected and what was given") {
    val msg = failure("SELECT array_to_tensor(array(1, 2, 3, 4, 5), array(2, 3))")
    assert(msg.contains("array_to_tensor: Shape (2, 3) needs 6 elements, got 5"), msg)
  }

  test("negative dimensions, unknown dtypes, out-of-range values and null elements are errors") {
    assert(failure("SELECT array_to_tensor(array(1, 2), array(-2, -1))").contains("negative dimension -2"))
    assert(failure("SELECT array_to_tensor(array(1, 2), array(2), 'complex64')").contains("Unknown tensor dtype 'complex64'"))
    assert(failure("SELECT array_to_tensor(array(1, 300), array(2), 'uint8')").contains("Value 300 at index 1 does not fit uint8"))
    assert(failure("SELECT array_to_tensor(array(1, NULL), array(2))").contains("element 1 is null"))
  }

  test("wrong argument types and counts fail analysis with the function's name") {
    val e = intercept[AnalysisException](spark.sql("SELECT array_to_tensor(array('a'), array(1))").collect())
    assert(e.getMessage.contains("array_to_tensor expects an array of numbers or booleans, got array<string>"))
    assert(intercept[AnalysisException](spark.sql("SELECT tensor_shape(1)").collect()).getMessage
      .contains("tensor_shape expects a tensor column, got int"))
    assert(failure("SELECT array_to_tensor(array(1))").contains("array_to_tensor takes 2 or 3 arguments"))
  }

  test("the functions are described in the catalog") {
    val usage = spark.sql("DESCRIBE FUNCTION array_to_tensor").collect().map(_.getString(0)).mkString("\n")
    assert(usage.contains("array_to_tensor(array, shape[, dtype])"), usage)
  }
}
