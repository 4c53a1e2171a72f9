package org.petastorm.spark.format

import java.nio.charset.StandardCharsets.UTF_8

import scala.jdk.CollectionConverters._

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileStatus, Path}
import org.apache.parquet.hadoop.util.HadoopOutputFile
import org.apache.parquet.schema.MessageType
import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, parse, render}
import org.petastorm.spark.shims.ParquetShims

/**
 * The dataset-level metadata in `_common_metadata` (a footer-only Parquet file), as docs/format.md describes:
 * the schema as JSON (preferred) and as a legacy pickle, and the row-group count of every data file.
 */
object DatasetMetadata {
  val CommonMetadataFile = "_common_metadata"
  val UnischemaJsonKey = "petastorm.unischema.json.v1"
  val UnischemaPickleKey = "dataset-toolkit.unischema.v1"
  val RowGroupsPerFileKey = "dataset-toolkit.num_row_groups_per_file.v1"

  /** Key/value metadata of `root/_common_metadata` as raw bytes, or empty when the file does not exist. */
  def read(conf: Configuration, root: Path): Map[String, Array[Byte]] = {
    val file = new Path(root, CommonMetadataFile)
    if (!file.getFileSystem(conf).exists(file)) Map.empty else FooterKeyValues.read(conf, file)
  }

  /** The dataset's Unischema: from the JSON key, else from the legacy pickle (allow-listed), else None. */
  def readSchema(conf: Configuration, root: Path): Option[Unischema] = schema(read(conf, root), root)

  /**
   * The Unischema in `metadata`, the key/values of `root`'s `_common_metadata` as [[read]] returns them (and as
   * [[DatasetFiles.check]] returns them, having read them for the row-group listing), so they are read once.
   */
  def schema(metadata: Map[String, Array[Byte]], root: Path): Option[Unischema] = {
    def where = new Path(root, CommonMetadataFile).toString
    metadata.get(UnischemaJsonKey).map { json =>
      try Unischema.fromJson(new String(json, UTF_8)) catch {
        case e: IllegalArgumentException => throw new IllegalArgumentException(s"Invalid $UnischemaJsonKey in $where: ${e.getMessage}", e)
      }
    }.orElse(metadata.get(UnischemaPickleKey).map { pickled =>
      try LegacyPickle.readUnischema(pickled) catch {
        case e: IllegalArgumentException => throw new IllegalArgumentException(s"$UnischemaPickleKey in $where: ${e.getMessage}", e)
      }
    })
  }

  /**
   * Data files under `root` (Parquet files, partition folders included; names Spark's listing skips skipped: see
   * [[DatasetFiles.list]]), sorted.
   */
  def dataFiles(conf: Configuration, root: Path): Seq[FileStatus] =
    DatasetFiles.list(root.getFileSystem(conf), root)
      .collect { case (_, s) if s.isFile && s.getPath.getName.endsWith(".parquet") => s }
      .sortBy(_.getPath.toString)

  /** Path of a data file relative to the dataset root, as the row-group key records it. */
  def relativePath(root: Path, file: Path): String = {
    val base = root.toUri.getPath.stripSuffix("/") + "/"
    file.toUri.getPath.stripPrefix(base)
  }

  /**
   * Writes `_common_metadata` with the given Parquet schema and key/value metadata. The file is written beside
   * and renamed into place, so readers never see half a footer; the file beside is removed if that fails.
   */
  def write(conf: Configuration, root: Path, schema: MessageType, keyValues: Map[String, String]): Unit = {
    val target = new Path(root, CommonMetadataFile)
    val staging = new Path(root, s".$CommonMetadataFile.${java.util.UUID.randomUUID()}.tmp")
    val fs = root.getFileSystem(conf)
    try {
      val writer = ParquetShims.footerWriter(HadoopOutputFile.fromPath(staging, conf), schema)
      writer.start()
      writer.end(keyValues.asJava)
      if (fs.exists(target)) fs.delete(target, false)
      if (!fs.rename(staging, target)) throw new java.io.IOException(s"Could not move $staging to $target")
    } finally if (fs.exists(staging)) fs.delete(staging, false)
  }

  /** The JSON value of the row-group key: `{relative path: count}` in path order. */
  def rowGroupsJson(counts: Seq[(String, Int)]): String =
    compact(render(JObject(counts.map { case (p, n) => p -> (JInt(n): JValue) }.toList)))

  /**
   * The entries `{relative path: count}` of the row-group key's JSON value, unchecked; `where` names the key and
   * file in the error for a value that is not a JSON object.
   */
  def rowGroupEntries(json: String, where: => String): List[(String, JValue)] =
    (try parse(json) catch {
      case e: Exception => throw new IllegalArgumentException(s"Invalid $where: ${e.getMessage}", e)
    }) match {
      case JObject(items) => items
      case _ => throw new IllegalArgumentException(s"$where is not a JSON object of data file: row-group count")
    }

  def parseRowGroups(json: String): Map[String, Int] =
    rowGroupEntries(json, RowGroupsPerFileKey).collect { case (p, JInt(n)) => p -> n.toInt }.toMap
}
