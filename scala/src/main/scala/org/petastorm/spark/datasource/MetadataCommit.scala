package org.petastorm.spark.datasource

import java.nio.charset.StandardCharsets.UTF_8

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.parquet.hadoop.ParquetFileReader
import org.apache.parquet.hadoop.util.HadoopInputFile
import org.petastorm.spark.format.{DatasetMetadata, LegacyPickle, Unischema}

/**
 * Writes a dataset's `_common_metadata` at job commit from the footers of its data files: row-group counts, and the
 * Unischema with fixed dimensions where every file agrees (each writer recorded what it saw; no pass over data).
 */
object MetadataCommit {
  private val SparkRowMetadata = "org.apache.spark.sql.parquet.row.metadata"

  def write(conf: Configuration, root: Path): Unit = {
    val plan = WritePlan.fromConf(conf)
    val existing = DatasetMetadata.readSchema(conf, root)
    val footers = DatasetMetadata.dataFiles(conf, root).map { status =>
      val reader = ParquetFileReader.open(HadoopInputFile.fromPath(status.getPath, conf))
      try status.getPath -> reader.getFooter finally reader.close()
    }
    val observed = ColumnStats.mergeAll(footers.map { case (_, footer) =>
      Option(footer.getFileMetaData.getKeyValueMetaData.get(ColumnStats.FooterKey)).map(ColumnStats.fromJson)
        .getOrElse(Map.empty)
    } ++ existing.toSeq.map(previousStats))
    val schema = plan.unischema(existing.map(_.name).getOrElse("PetastormSchema"), observed)
    val counts = footers.map { case (path, footer) => DatasetMetadata.relativePath(root, path) -> footer.getBlocks.size }
    val base = footers.headOption.map(_._2.getFileMetaData)
    val keyValues = Map(
      DatasetMetadata.UnischemaJsonKey -> schema.toJson,
      DatasetMetadata.UnischemaPickleKey -> new String(LegacyPickle.writeUnischema(schema), UTF_8),
      DatasetMetadata.RowGroupsPerFileKey -> DatasetMetadata.rowGroupsJson(counts)) ++
      base.flatMap(m => Option(m.getKeyValueMetaData.get(SparkRowMetadata)).map(SparkRowMetadata -> _))
    val parquetSchema = base.map(_.getSchema).getOrElse(
      new org.apache.spark.sql.execution.datasources.parquet.SparkToParquetSchemaConverter(conf)
        .convert(plan.storageSchema))
    DatasetMetadata.write(conf, root, parquetSchema, keyValues)
  }

  /** Statistics standing for files written before (an append): the shapes the dataset's schema recorded. */
  private def previousStats(schema: Unischema): Map[String, ColumnStats] =
    schema.fields.filter(_.isEncodedArray).map(f => f.name -> ColumnStats(f.dtype, f.shape)).toMap
}
