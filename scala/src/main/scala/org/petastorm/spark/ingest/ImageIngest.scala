package org.petastorm.spark.ingest

import java.util.Locale

import org.apache.hadoop.fs.{FileAlreadyExistsException, FileSystem, Path}
import org.apache.spark.sql.{DataFrame, SparkSession}
import org.apache.spark.sql.expressions.Window
import org.apache.spark.sql.functions.{call_function, col, concat, expr, lit, row_number, trim}
import org.apache.spark.sql.types.IntegerType
import org.petastorm.spark.format.DatasetFiles
import org.petastorm.spark.functions.load_image
import org.petastorm.spark.image.ImageFailures

/** What an ingest wrote: its rows (in `append` mode not counting the rows already there), the images left out. */
final case class IngestResult(rows: Long, failedImages: Long, output: String)

/**
 * Images plus a label CSV (`filename,label`, with or without that header) into a Petastorm dataset in one
 * distributed job: images are read and decoded on the executors (`load_image`), optionally resized, and written
 * with `format("petastorm")` as a uint8 (H, W, 3) tensor column `image` (codec `ndarray` or `png`) beside
 * `filename` and `label` (see [[readLabels]]). Images that cannot be read are counted and left out, or fail the job
 * when `spark.petastorm.image.onError=fail`. In the default mode (`errorifexists`) an existing `output` fails with a
 * `FileAlreadyExistsException` naming it before any image is read; `ignore` leaves it as it is (0 rows written) and
 * `append` adds to it (the result counts the added rows).
 */
object ImageIngest {
  def run(spark: SparkSession, labelsCsv: String, imagesDir: String, output: String, size: Option[(Int, Int)],
          codec: String, mode: String): IngestResult = {
    val saveMode = mode.trim.toLowerCase(Locale.ROOT)
    val path = new Path(output)
    val fs = path.getFileSystem(spark.sessionState.newHadoopConf())
    val exists = fs.exists(path)
    if (exists && Set("errorifexists", "error", "default")(saveMode)) {
      // Checked before any work, so the error names the output and what to do (Spark's PATH_ALREADY_EXISTS does not).
      throw new FileAlreadyExistsException(
        s"ingest: output $output already exists; use mode 'overwrite' to replace it or 'append' to add to it")
    }
    if (exists && saveMode == "ignore") IngestResult(0, 0, path.toString) // Spark would not write: nothing is read
    else {
      val existing = if (exists && saveMode == "append" && holdsData(fs, path)) rowCount(spark, output) else 0L
      write(spark, labelsCsv, imagesDir, output, size, codec, saveMode, existing)
    }
  }

  /** For Java and Python callers: `height` and `width` of 0 keep the images' own size. */
  def run(spark: SparkSession, labelsCsv: String, imagesDir: String, output: String, height: Int, width: Int,
          codec: String, mode: String): IngestResult =
    run(spark, labelsCsv, imagesDir, output, if (height > 0 && width > 0) Some((height, width)) else None, codec, mode)

  private def write(spark: SparkSession, labelsCsv: String, imagesDir: String, output: String,
                    size: Option[(Int, Int)], codec: String, saveMode: String, existing: Long): IngestResult = {
    val labels = readLabels(spark, labelsCsv)
    val partitions = math.max(spark.sparkContext.defaultParallelism, (labels.count() / 2000).toInt)
    val dir = imagesDir.stripSuffix("/") + "/"
    val image = size match {
      case Some((h, w)) => load_image(concat(lit(dir), col("filename")), h, w, 3)
      case None => call_function("load_image", concat(lit(dir), col("filename")), lit(null).cast(IntegerType),
        lit(null).cast(IntegerType), lit(3))
    }
    val before = ImageFailures.count(spark)
    labels.repartition(partitions).withColumn("image", image).where(col("image").isNotNull)
      .write.format("petastorm").mode(saveMode).option("codec.image", codec).save(output)
    val failed = ImageFailures.count(spark) - before
    IngestResult(rowCount(spark, output) - existing, failed, new Path(output).toString)
  }

  /** Whether `output` (which exists) holds a data file: an empty folder has no rows to count. */
  private def holdsData(fs: FileSystem, output: Path): Boolean =
    !fs.getFileStatus(output).isDirectory || DatasetFiles.list(fs, output).exists(_._2.isFile)

  private def rowCount(spark: SparkSession, output: String): Long = spark.read.format("petastorm").load(output).count()

  /** try_cast(column AS INT), as SQL: Column.try_cast is Spark 4 only. */
  private def tryCastToInt(column: String) = expr(s"try_cast(`$column` AS INT)")

  /**
   * `filename,label` rows; the header line is optional. When every label is an integer, `label` is an integer
   * column. Otherwise `label` keeps the text and `label_index` is its position (from 0) in the sorted distinct
   * labels, so the same set of labels always gets the same indexes.
   */
  def readLabels(spark: SparkSession, labelsCsv: String): DataFrame = {
    val raw = spark.read.option("header", "false").csv(labelsCsv)
    if (raw.columns.length < 2) {
      throw new IllegalArgumentException(s"$labelsCsv: expected two columns, filename,label; got ${raw.columns.length}")
    }
    val named = raw.select(trim(col(raw.columns(0))).as("filename"), trim(col(raw.columns(1))).as("label"))
      .where(!(col("filename") === "filename" && col("label") === "label"))
    // No cast that can throw (ANSI mode): a label is an integer when it is digits and try_cast takes it.
    val isInteger = col("label").rlike("^[+-]?[0-9]+$") && tryCastToInt("label").isNotNull
    if (named.where(col("label").isNotNull && !isInteger).isEmpty) {
      named.withColumn("label", tryCastToInt("label"))
    } else {
      // Computed by Spark (a window over the distinct labels), not collected to the driver: labels may be many.
      val indexes = named.where(col("label").isNotNull).select("label").distinct()
        .withColumn("label_index", (row_number().over(Window.orderBy("label")) - 1).cast(IntegerType))
      named.join(indexes, Seq("label"), "left").select("filename", "label", "label_index")
    }
  }
}
