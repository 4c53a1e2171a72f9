package org.petastorm.spark.datasource

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileStatus, Path}
import org.apache.hadoop.mapreduce.{Job, OutputCommitter}
import org.apache.parquet.hadoop.ParquetOutputFormat
import org.apache.parquet.hadoop.api.WriteSupport
import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.datasources.{OutputWriterFactory, PartitionedFile}
import org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat
import org.apache.spark.sql.internal.SQLConf
import org.apache.spark.sql.sources.Filter
import org.apache.spark.sql.types.StructType
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.format.DatasetMetadata
import org.petastorm.spark.tensor.TensorUDT

/**
 * The FileFormat side of the `petastorm` source. Spark routes every file-source write through a FileFormat
 * (SPARK-28396), which gives all save modes, `partitionBy` and `saveAsTable`; this one is Spark's Parquet format
 * with tensor columns encoded by the Petastorm codecs and the dataset metadata written at job commit. It also
 * reads, decoding like the DataSource V2 scan, where Spark plans file scans itself (catalog tables).
 */
class PetastormFileFormat extends ParquetFileFormat {
  override def shortName(): String = "petastorm"
  override def toString: String = "Petastorm"

  override def prepareWrite(sparkSession: SparkSession, job: Job, options: Map[String, String],
                            dataSchema: StructType): OutputWriterFactory = {
    val petastormOptions = PetastormWriteOptions(options)
    val plan = WritePlan(dataSchema, petastormOptions.columns)
    val conf = job.getConfiguration
    petastormOptions.path.map(new Path(_)).foreach { root =>
      val fs = root.getFileSystem(conf)
      // Metadata found here belongs to an append (an overwrite has cleared the target, or will at commit).
      if (!PetastormCommitProtocol.overwritePending(fs.makeQualified(root).toString)) checkAppend(conf, root, plan)
      conf.setBoolean(PetastormOutputCommitter.CreatedTarget, !fs.exists(root))
    }
    petastormOptions.rowGroupBytes.foreach(conf.setLong(ParquetOutputFormat.BLOCK_SIZE, _))
    val factory = super.prepareWrite(sparkSession, job, options, plan.storageSchema)
    // Encoded tensors are (nearly) all distinct: dictionary encoding would only be tried and abandoned.
    plan.columns.filter(_.tensor.isDefined).foreach { c =>
      conf.setBoolean(s"${ParquetOutputFormat.ENABLE_DICTIONARY}#${c.field.name}", false)
    }
    plan.toConf(conf)
    conf.setClass(ParquetOutputFormat.WRITE_SUPPORT_CLASS, classOf[PetastormWriteSupport], classOf[WriteSupport[_]])
    conf.setClass(SQLConf.OUTPUT_COMMITTER_CLASS.key, classOf[PetastormOutputCommitter], classOf[OutputCommitter])
    factory
  }

  private def readPlan(sparkSession: SparkSession, options: Map[String, String], conf: Configuration): ReadPlan = {
    val petastormOptions = PetastormReadOptions(options)
    val schema = petastormOptions.path.flatMap(p => DatasetMetadata.readSchema(conf, new Path(p)))
    ReadPlan(schema, petastormOptions.decode,
      petastormOptions.decodeLimits(DecodeLimits.fromConf(sparkSession.conf.getOption)))
  }

  override def inferSchema(sparkSession: SparkSession, options: Map[String, String],
                           files: Seq[FileStatus]): Option[StructType] =
    super.inferSchema(sparkSession, options, files)
      .map(readPlan(sparkSession, options, sparkSession.sessionState.newHadoopConfWithOptions(options)).readSchema)

  override def supportBatch(sparkSession: SparkSession, schema: StructType): Boolean =
    !schema.exists(f => f.dataType.isInstanceOf[TensorUDT] || f.metadata.contains("petastorm")) &&
      super.supportBatch(sparkSession, schema)

  override def buildReaderWithPartitionValues(sparkSession: SparkSession, dataSchema: StructType,
      partitionSchema: StructType, requiredSchema: StructType, filters: Seq[Filter], options: Map[String, String],
      hadoopConf: Configuration): PartitionedFile => Iterator[InternalRow] = {
    val plan = readPlan(sparkSession, options, hadoopConf)
    val storageRequired = plan.storageSchema(requiredSchema)
    val decoded = requiredSchema.fieldNames.filter(n => plan.storageType(requiredSchema(n)) != requiredSchema(n)).toSet
    val read = super.buildReaderWithPartitionValues(sparkSession, plan.storageSchema(dataSchema), partitionSchema,
      storageRequired, filters.filterNot(_.references.exists(decoded.contains)), options, hadoopConf)
    val output = StructType(storageRequired ++ partitionSchema)
    file => plan.decoder(output, file.filePath.toString) match {
      case Some(decoder) => read(file).map(decoder.apply)
      case None => read(file)
    }
  }

  /** Appending needs the dataset's recorded columns to match the new ones (names, types, codecs). */
  private def checkAppend(conf: org.apache.hadoop.conf.Configuration, root: Path, plan: WritePlan): Unit =
    DatasetMetadata.readSchema(conf, root).foreach { existing =>
      val proposed = plan.unischema(existing.name, Map.empty)
      val before = existing.fields.map(f => f.name -> (f.dtype, f.codec)).toMap
      proposed.fields.foreach { f =>
        before.get(f.name) match {
          case Some((dtype, codec)) if codec == f.codec && (dtype == f.dtype || f.isEncodedArray) =>
          case Some((dtype, codec)) => throw new IllegalArgumentException(
            s"Cannot append to $root: column '${f.name}' is stored as $dtype with codec ${codec.getOrElse("none")}, " +
              s"the new data has ${f.dtype} with codec ${f.codec.getOrElse("none")}")
          case None => throw new IllegalArgumentException(
            s"Cannot append to $root: column '${f.name}' is not in the dataset (columns: ${before.keys.mkString(", ")})")
        }
      }
      val missing = before.keySet -- proposed.fields.map(_.name)
      if (missing.nonEmpty) {
        throw new IllegalArgumentException(s"Cannot append to $root: the new data lacks ${missing.mkString(", ")}")
      }
    }
}
