package org.petastorm.spark

import org.apache.spark.sql.SparkSessionExtensions

/**
 * Registers petastorm's SQL functions in every session built with
 * `spark.sql.extensions=org.petastorm.spark.PetastormExtensions`.
 */
class PetastormExtensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit =
    SqlFunctions.all.foreach(extensions.injectFunction)
}
