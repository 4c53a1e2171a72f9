package org.petastorm.spark

import org.apache.spark.sql.SparkSessionExtensions
import org.petastorm.spark.datasource.WriteNullChecks

/**
 * Registers petastorm's SQL functions, and the null checks of petastorm writes ([[WriteNullChecks]]), in every
 * session built with `spark.sql.extensions=org.petastorm.spark.PetastormExtensions`.
 */
class PetastormExtensions extends (SparkSessionExtensions => Unit) {
  override def apply(extensions: SparkSessionExtensions): Unit = {
    SqlFunctions.all.foreach(extensions.injectFunction)
    extensions.injectOptimizerRule(_ => WriteNullChecks)
  }
}
