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

  def vector_to_tensor(vector: Column): Column = call_function("vector_to_tensor", vector)
  def vector_to_tensor(vector: Column, shape: Seq[Int]): Column =
    call_function("vector_to_tensor", vector, shapeColumn(shape))

  def load_image(path: Column): Column = call_function("load_image", path)
  def load_image(path: Column, height: Int, width: Int): Column =
    call_function("load_image", path, lit(height), lit(width))
  def load_image(path: Column, height: Int, width: Int, channels: Int): Column =
    call_function("load_image", path, lit(height), lit(width), lit(channels))
  def decode_image(bytes: Column): Column = call_function("decode_image", bytes)
  def decode_image(bytes: Column, height: Int, width: Int): Column =
    call_function("decode_image", bytes, lit(height), lit(width))
  def decode_image(bytes: Column, height: Int, width: Int, channels: Int): Column =
    call_function("decode_image", bytes, lit(height), lit(width), lit(channels))
  def encode_image(tensor: Column, format: String): Column = call_function("encode_image", tensor, lit(format))
  def encode_image(tensor: Column, format: String, quality: Int): Column =
    call_function("encode_image", tensor, lit(format), lit(quality))
}
