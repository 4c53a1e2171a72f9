package org.petastorm.spark

import org.apache.spark.sql.Column
import org.apache.spark.sql.functions.{array, call_function, lit}

/**
 * DataFrame API of petastorm's SQL functions. They resolve through the session's function registry, so the
 * session must be built with `spark.sql.extensions=org.petastorm.spark.PetastormExtensions`.
 */
object functions {
  private def shapeColumn(shape: Seq[Int]): Column = array(shape.map(lit): _*)

  def tensor_shape(tensor: Column): Column = call_function("tensor_shape", tensor)
  def tensor_dtype(tensor: Column): Column = call_function("tensor_dtype", tensor)
  def tensor_to_array(tensor: Column): Column = call_function("tensor_to_array", tensor)
  def tensor_to_array(tensor: Column, dtype: String): Column = call_function("tensor_to_array", tensor, lit(dtype))
  def tensor_reshape(tensor: Column, shape: Seq[Int]): Column = call_function("tensor_reshape", tensor, shapeColumn(shape))
  def array_to_tensor(values: Column, shape: Seq[Int]): Column = call_function("array_to_tensor", values, shapeColumn(shape))
  def array_to_tensor(values: Column, shape: Seq[Int], dtype: String): Column =
    call_function("array_to_tensor", values, shapeColumn(shape), lit(dtype))
  def array_to_tensor(values: Column, shape: Column): Column = call_function("array_to_tensor", values, shape)
  def array_to_tensor(values: Column, shape: Column, dtype: String): Column =
    call_function("array_to_tensor", values, shape, lit(dtype))
}
