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
import org.petastorm.spark.format.DatasetFiles
import org.petastorm.spark.tensor.TensorUDT

/**
 * The FileFormat side of the `petastorm` source. Spark routes every file-source write through a FileFormat
 * (SPARK-28396), which gives all save modes, `partitionBy` and `saveAsTable`; this one is Spark's Parquet format
 * with tensor columns encoded by the Petastorm codecs and the dataset metadata written at job commit. It also
 * reads, decoding like the DataSource V2 scan, where Spark plans file scans itself (catalog tables).
 */
class PetastormFileFormat extends ParquetFileFormat {
  // Spark makes one of these for every write, before it plans the write: sessions without the extension get the
  // null checks of petastorm writes here.
  (SparkSession.getActiveSession.toSeq ++ SparkSession.getDefaultSession).distinct.foreach(WriteNullChecks.register)

  override def shortName(): String = "petastorm"
  override def toString: String = "Petastorm"

  override def prepareWrite(sparkSession: SparkSession, job: Job, options: Map[String, String],
                            dataSchema: StructType): OutputWriterFactory = {
    val petastormOptions = PetastormWriteOptions(options)
    val conf = job.getConfiguration
    petastormOptions.path.map(new Path(_)).foreach { root =>
      conf.setBoolean(PetastormOutputCommitter.CreatedTarget, !root.getFileSystem(conf).exists(root))
    }
    // An append is checked against the dataset when the job starts (AppendCheck.atJobStart), once an overwrite has
    // cleared the target or deferred clearing it.
    val plan = WritePlan(dataSchema, petastormOptions.columns)
    // Task output stays in the staging folder until the job commits, so a job that fails moves nothing in.
    conf.setInt(PetastormOutputCommitter.AlgorithmVersion, 1)
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

  /** The read plan of the dataset at the `path` option, whose files are checked first (see DatasetFiles). */
  private def readPlan(sparkSession: SparkSession, options: Map[String, String], conf: Configuration): ReadPlan = {
    val petastormOptions = PetastormReadOptions(options)
    val schema = petastormOptions.path.flatMap(p => DatasetFiles.checkedSchema(conf, new Path(p)))
    ReadPlan(schema, petastormOptions.decode,
      petastormOptions.decodeLimits(DecodeLimits.fromConf(sparkSession.conf.getOption)))
  }

  override def inferSchema(sparkSession: SparkSession, options: Map[String, String],
                           files: Seq[FileStatus]): Option[StructType] = {
    val plan = readPlan(sparkSession, options, sparkSession.sessionState.newHadoopConfWithOptions(options))
    super.inferSchema(sparkSession, options, files).map(plan.readSchema)
  }

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
}
