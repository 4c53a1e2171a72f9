package org.petastorm.spark.datasource

import java.nio.charset.StandardCharsets.UTF_8

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.parquet.hadoop.ParquetFileReader
import org.apache.parquet.hadoop.metadata.ParquetMetadata
import org.apache.parquet.hadoop.util.HadoopInputFile
import org.petastorm.spark.format.{DatasetMetadata, LegacyPickle, Unischema}

/**
 * Writes a dataset's `_common_metadata` at job commit from the footers of its data files: row-group counts, and the
 * Unischema with fixed dimensions where every file agrees (each writer recorded what it saw; no pass over data). An
 * append keeps the dataset's Unischema as it is (its rows were checked against it). [[checkStaged]] checks, before
 * the job's files are moved in, that their statistics merge into one Unischema.
 */
object MetadataCommit {
  private val SparkRowMetadata = "org.apache.spark.sql.parquet.row.metadata"

  /**
   * Fails, naming the column, when the job's new data files (still in the staging folder) hold a tensor column of two
   * dtypes or ranks, counting in an append the stored schema's. `files` are the staged files, each with the path it
   * gets in the dataset; the footers read are returned by that path (qualified), for [[write]] to use once the files
   * have been moved there (a move keeps a file's bytes).
   */
  def checkStaged(conf: Configuration, files: Seq[(Path, Path)]): Map[Path, ParquetMetadata] = {
    val plan = WritePlan.fromConf(conf)
    val footers = files.filter(_._1.getName.endsWith(".parquet")).map { case (from, to) => to -> footer(conf, from) }
    ColumnStats.mergeAll(footers.map { case (_, f) => stats(f) } ++ plan.stored.toSeq.map(previousStats))
    footers.map { case (to, f) => qualified(conf, to) -> f }.toMap
  }

  /**
   * Writes `root`'s `_common_metadata` from the footers of its data files; `known` holds footers already read (the
   * job's own files, from [[checkStaged]]), by qualified path, so only the other files' footers are read here.
   */
  def write(conf: Configuration, root: Path, known: Map[Path, ParquetMetadata] = Map.empty): Unit = {
    val plan = WritePlan.fromConf(conf)
    val footers = DatasetMetadata.dataFiles(conf, root).map { status =>
      val path = status.getPath
      path -> known.getOrElse(qualified(conf, path), footer(conf, path))
    }
    val schema = plan.stored.getOrElse {
      // An append recorded the stored Unischema when the job started (AppendCheck): it is not read again here.
      val existing = DatasetMetadata.readSchema(conf, root)
      val observed = ColumnStats.mergeAll(footers.map { case (_, f) => stats(f) } ++ existing.toSeq.map(previousStats))
      plan.unischema(existing.map(_.name).getOrElse("PetastormSchema"), observed)
    }
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

  private def qualified(conf: Configuration, file: Path): Path = file.getFileSystem(conf).makeQualified(file)

  private def footer(conf: Configuration, file: Path): ParquetMetadata = {
    val reader = ParquetFileReader.open(HadoopInputFile.fromPath(file, conf))
    try reader.getFooter finally reader.close()
  }

  /** What the file's writer observed in its tensor columns (nothing for files written elsewhere). */
  private def stats(footer: ParquetMetadata): Map[String, ColumnStats] =
    Option(footer.getFileMetaData.getKeyValueMetaData.get(ColumnStats.FooterKey)).map(ColumnStats.fromJson)
      .getOrElse(Map.empty)

  /** Statistics standing for files written before (an append): the shapes the dataset's schema recorded. */
  private def previousStats(schema: Unischema): Map[String, ColumnStats] =
    schema.fields.filter(_.isEncodedArray).map(f => f.name -> ColumnStats(f.dtype, f.shape)).toMap
}
