package org.petastorm.spark.image

import java.io.{FileNotFoundException, IOException}
import java.nio.file.{AccessDeniedException, NoSuchFileException}

import org.apache.spark.SparkContext
import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.internal.SQLConf
import org.apache.spark.util.LongAccumulator
import org.slf4j.LoggerFactory

/**
 * What `load_image` and `decode_image` do with a file they cannot read or bytes they cannot decode, chosen by the
 * session conf `spark.petastorm.image.onError` when the query is analysed: `null` (the default) gives a null
 * tensor, logs a warning naming the source and the reason, and adds one to the context's
 * [[ImageFailures]] counter; `fail` stops the query with an `IllegalArgumentException` naming the function, the
 * source and the reason, the same for a file that cannot be read (`load_image: cannot read 'file:/x.png': file not
 * found`) and for bytes that cannot be decoded (`load_image: cannot decode 'file:/y.png': Expected PNG, ...`).
 */
sealed trait OnImageError extends Serializable {
  /** The result for a failure of `function` on `source` (a quoted path, or a description of the bytes). */
  def apply(function: String, source: String, cause: Exception): Null
}

object OnImageError {
  val ConfKey = "spark.petastorm.image.onError"

  private val log = LoggerFactory.getLogger(classOf[OnImageError])

  /** Why reading or decoding failed, in words (the source is named by the caller). */
  private def reason(cause: Exception): String = cause match {
    case _: FileNotFoundException | _: NoSuchFileException => "file not found"
    case _: AccessDeniedException => "permission denied"
    case e: IOException => s"${e.getClass.getSimpleName}: ${e.getMessage}"
    case e => e.getMessage
  }

  private def failure(function: String, source: String, cause: Exception): String = cause match {
    case _: IOException => s"$function: cannot read $source: ${reason(cause)}"
    case _ => s"$function: cannot decode $source: ${reason(cause)}"
  }

  case object Fail extends OnImageError {
    override def apply(function: String, source: String, cause: Exception): Null =
      throw new IllegalArgumentException(failure(function, source, cause), cause)
    override def toString: String = "fail"
  }

  final case class ReturnNull(failures: LongAccumulator) extends OnImageError {
    override def apply(function: String, source: String, cause: Exception): Null = {
      failures.add(1)
      log.warn(s"$function gives null for $source: ${reason(cause)}")
      null
    }
    override def toString: String = "null"
  }

  /** The policy the active session's conf selects; call it on the driver while a query is analysed. */
  def current(function: String): OnImageError = SQLConf.get.getConfString(ConfKey, "null").trim.toLowerCase match {
    case "null" => ReturnNull(ImageFailures.counter(SparkContext.getOrCreate()))
    case "fail" => Fail
    case other => throw new IllegalArgumentException(s"$function: $ConfKey must be 'null' or 'fail', got '$other'")
  }
}

/**
 * Counts the images that `load_image` and `decode_image` turned into null, per SparkContext, in a named
 * accumulator (`petastorm.image.failures`, also shown in the Spark UI). The count covers every query since the
 * context started; like every accumulator updated by transformations, a task that runs again counts again.
 */
object ImageFailures {
  val AccumulatorName = "petastorm.image.failures"

  private var registered: Option[(SparkContext, LongAccumulator)] = None

  private[image] def counter(sc: SparkContext): LongAccumulator = synchronized {
    registered match {
      case Some((context, accumulator)) if context eq sc => accumulator
      case _ =>
        val accumulator = sc.longAccumulator(AccumulatorName)
        registered = Some(sc -> accumulator)
        accumulator
    }
  }

  /** Images turned into null so far in the session's SparkContext. */
  def count(spark: SparkSession): Long = counter(spark.sparkContext).value
}
