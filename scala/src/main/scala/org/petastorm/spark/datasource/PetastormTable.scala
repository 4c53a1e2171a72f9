package org.petastorm.spark.datasource

import scala.jdk.CollectionConverters._

import org.apache.hadoop.fs.{FileStatus, Path}
import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.connector.read.ScanBuilder
import org.apache.spark.sql.connector.write.{LogicalWriteInfo, WriteBuilder}
import org.apache.spark.sql.execution.datasources.FileFormat
import org.apache.spark.sql.execution.datasources.parquet.ParquetUtils
import org.apache.spark.sql.execution.datasources.v2.FileTable
import org.apache.spark.sql.types.{DataType, StructType}
import org.apache.spark.sql.util.CaseInsensitiveStringMap
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.format.DatasetFiles

/**
 * A Petastorm dataset as a Spark table: the schema comes from the Parquet files with encoded columns shown as
 * tensors (per the dataset's Unischema: JSON key, else the allow-listed legacy pickle, else plain Parquet), decoded
 * under the decode limits of the read options, else of the session's confs. The dataset's files are checked before
 * any is opened (an empty or non-regular file, or one the row-group listing names but the folder lacks, is an error
 * rather than rows silently missing).
 */
case class PetastormTable(name: String, sparkSession: SparkSession, options: CaseInsensitiveStringMap,
                          paths: Seq[String], userSpecifiedSchema: Option[StructType],
                          fallbackFileFormat: Class[_ <: FileFormat])
  extends FileTable(sparkSession, options, paths, userSpecifiedSchema) {

  /** Parsed when first needed (the schema is inferred, or a scan planned), as Spark reads the options. */
  lazy val petastormOptions: PetastormReadOptions = PetastormReadOptions(options)

  /** The dataset's schema, read once its files are checked (DatasetFiles), before Spark opens any. */
  lazy val readPlan: ReadPlan = {
    val conf = sparkSession.sessionState.newHadoopConfWithOptions(options.asCaseSensitiveMap.asScala.toMap)
    val schema = paths.map(p => DatasetFiles.checkedSchema(conf, new Path(p))).headOption.flatten
    val limits = petastormOptions.decodeLimits(DecodeLimits.fromConf(sparkSession.conf.getOption))
    ReadPlan(schema, petastormOptions.decode, limits)
  }

  override def inferSchema(files: Seq[FileStatus]): Option[StructType] = {
    val plan = readPlan
    ParquetUtils.inferSchema(sparkSession, options.asScala.toMap, files).map(plan.readSchema)
      .map(petastormOptions.selectFields)
  }

  override def newScanBuilder(options: CaseInsensitiveStringMap): ScanBuilder =
    new PetastormScanBuilder(sparkSession, fileIndex, schema, dataSchema, scanOptions(options), readPlan)

  /** The table's options overlaid with the scan's: Spark 4's FileTable.mergedOptions, which Spark 3.5 lacks. */
  private def scanOptions(scan: CaseInsensitiveStringMap): CaseInsensitiveStringMap =
    new CaseInsensitiveStringMap((options.asCaseSensitiveMap.asScala ++ scan.asCaseSensitiveMap.asScala).asJava)

  override def newWriteBuilder(info: LogicalWriteInfo): WriteBuilder =
    throw new UnsupportedOperationException(
      "Petastorm datasets are written with df.write.format(\"petastorm\") (Spark's file-source write path)")

  override def supportsDataType(dataType: DataType): Boolean = true

  override def formatName: String = "Petastorm"
}
