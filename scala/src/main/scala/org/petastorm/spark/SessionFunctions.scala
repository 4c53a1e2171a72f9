package org.petastorm.spark

import java.util.Locale

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.FunctionIdentifier
import org.apache.spark.sql.catalyst.analysis.FunctionRegistry

/**
 * Petastorm's SQL functions for a session built without
 * `spark.sql.extensions=org.petastorm.spark.PetastormExtensions`: the `petastorm` data source registers them in the
 * session that reads through it, so SQL such as `SELECT tensor_shape(image) FROM ...` resolves once the session has
 * used `format("petastorm")`. They are registered as the extension registers them, beside Spark's built-in
 * functions; a name the session already knows (from the extension, or a function of the user's) is left as it is.
 */
private[spark] object SessionFunctions {
  def register(session: SparkSession): Unit = {
    val registry = session.sessionState.functionRegistry
    val known = registry.listFunction().map(_.funcName.toLowerCase(Locale.ROOT)).toSet
    SqlFunctions.all.foreach { case (name, info, builder) =>
      if (!known.contains(name.funcName.toLowerCase(Locale.ROOT))) {
        registry.registerFunction(builtin(name), info, builder)
      }
    }
  }

  /** `name` qualified the way this Spark names its built-in functions (`system.builtin.abs` in 4.3, `abs` before). */
  private def builtin(name: FunctionIdentifier): FunctionIdentifier = {
    val like = FunctionRegistry.builtin.listFunction().head
    FunctionIdentifier(name.funcName, like.database, like.catalog)
  }
}
