package org.petastorm.spark.format

import java.io.{FileNotFoundException, IOException}
import java.nio.charset.StandardCharsets.UTF_8
import java.nio.file.{Files, LinkOption, Paths}

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.{FileStatus, FileSystem, Path}
import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, render}

/**
 * The files of a dataset checked before a reader opens any: Spark's file listing skips, without a word, an empty
 * file (a FIFO lists as one, and opening it would block for ever), a missing file or dangling link (never listed)
 * and a folder in a data file's place. So every data file must be a regular, non-empty file; every path that the
 * row-group listing `dataset-toolkit.num_row_groups_per_file.v1` names must be a relative path inside the dataset
 * (no `..`, not absolute, no component starting with `_` or `.`) that the listing holds as such a file, with a
 * non-negative integer count; no path it names is ever opened or joined to the root unchecked. Anything else is an
 * error naming the file (and the key).
 */
object DatasetFiles {
  /**
   * Checks `path`: a dataset folder (its data files and row-group listing), or a single data file. Returns the
   * key/value metadata of the folder's `_common_metadata`, read for the row-group listing (empty for a single file,
   * a missing path or a folder without one), for the caller that wants the Unischema (DatasetMetadata.schema).
   */
  def check(conf: Configuration, path: Path): Map[String, Array[Byte]] = {
    val fs = path.getFileSystem(conf)
    val status = try fs.getFileStatus(path) catch { case _: FileNotFoundException => return Map.empty }
    if (status.isDirectory) {
      val listed = list(fs, status.getPath)
      val metadata = DatasetMetadata.read(conf, status.getPath)
      checkRowGroupListing(metadata, fs, status.getPath, listed.collect { case (r, s) if s.isFile && s.getLen > 0 => r }.toSet)
      listed.foreach { case (_, s) => checkEntry(s) }
      metadata
    } else {
      checkEntry(status)
      Map.empty
    }
  }

  /**
   * Checks `path` (see [[check]]) and returns the dataset's Unischema, taken from the `_common_metadata` the check
   * read (None for a single file, a missing path or a folder without one).
   */
  def checkedSchema(conf: Configuration, path: Path): Option[Unischema] = DatasetMetadata.schema(check(conf, path), path)

  /** A path the row-group listing may name: relative, inside the dataset, no component hidden or `..`. */
  def isDataFilePath(relative: String): Boolean =
    relative.nonEmpty && relative.split("/", -1).forall(c => c.nonEmpty && !c.startsWith("_") && !c.startsWith("."))

  /**
   * Data entries under `dir`, relative, as Spark lists them (no `.` names, no `_` names but partition folders, no
   * `._COPYING_` names), and any folder named `*.parquet` beside what it holds. The one walk of a dataset's tree:
   * the checks here and the metadata commit's data files (DatasetMetadata.dataFiles) both list through it.
   */
  def list(fs: FileSystem, dir: Path): Seq[(String, FileStatus)] = list(fs, dir, "")

  private def list(fs: FileSystem, dir: Path, prefix: String): Seq[(String, FileStatus)] =
    fs.listStatus(dir).toSeq.flatMap { s =>
      val name = s.getPath.getName
      if (name.startsWith(".") || name.startsWith("_") && !name.contains("=") || name.endsWith("._COPYING_")) Nil
      else if (s.isDirectory) {
        val inside = list(fs, s.getPath, s"$prefix$name/")
        if (name.endsWith(".parquet")) (s"$prefix$name" -> s) +: inside else inside
      } else Seq(s"$prefix$name" -> s)
    }

  private def checkEntry(s: FileStatus): Unit =
    if (s.isDirectory) throw new IOException(s"${s.getPath} is a folder, not a Parquet data file: rename or remove it")
    else if (s.getLen == 0) throw new IOException(
      if (isRegular(s.getPath)) s"${s.getPath} is empty (0 bytes), not a Parquet file: remove it or write it again"
      else s"${s.getPath} is not a regular file (a named pipe, socket or device?); only regular files are read as " +
        "data files: remove it from the dataset folder")

  /** False for a local FIFO, socket or device (which Hadoop lists as an empty file); true elsewhere. */
  private def isRegular(p: Path): Boolean =
    p.toUri.getScheme != "file" || Files.isRegularFile(Paths.get(p.toUri))

  private def checkRowGroupListing(metadata: Map[String, Array[Byte]], fs: FileSystem, root: Path,
                                   files: Set[String]): Unit =
    metadata.get(DatasetMetadata.RowGroupsPerFileKey).foreach { bytes =>
      val where = s"${DatasetMetadata.RowGroupsPerFileKey} of ${new Path(root, DatasetMetadata.CommonMetadataFile)}"
      DatasetMetadata.rowGroupEntries(new String(bytes, UTF_8), where).foreach { case (relative, count) =>
        if (!isDataFilePath(relative)) throw new IllegalArgumentException(s"$where names '$relative', which is not a " +
          s"data file path inside the dataset $root (expected a relative path without '..' and without components " +
          "starting with '_' or '.')")
        count match {
          case JInt(n) if n >= 0 && n <= Int.MaxValue =>
          case other => throw new IllegalArgumentException(
            s"$where gives $relative the row-group count ${compact(render(other))}; expected a non-negative integer")
        }
        if (!files.contains(relative)) {
          throw new IllegalArgumentException(s"$where names $relative, which is ${found(fs, root, relative)}; " +
            "expected a regular data file of the dataset, so its rows cannot be read. If it was removed on purpose, " +
            "write the metadata again (petastorm-generate-metadata)")
        }
      }
    }

  /** What a path the row-group listing names, but the folder does not hold as a non-empty file, is, in words. */
  private def found(fs: FileSystem, root: Path, relative: String): String = {
    val path = relative.split("/").foldLeft(root)((p, c) => new Path(p, new Path(null, null, c)))
    val what = if (path.toUri.getScheme == "file") {
      val local = Paths.get(path.toUri)
      if (Files.isSymbolicLink(local) && !Files.exists(local)) "a dangling symbolic link"
      else if (!Files.exists(local, LinkOption.NOFOLLOW_LINKS)) "missing"
      else if (Files.isDirectory(local)) "a folder"
      else if (!Files.isRegularFile(local)) "not a regular file (a named pipe, socket or device?)"
      else "empty (0 bytes)"
    } else try {
      val s = fs.getFileStatus(path)
      if (s.isDirectory) "a folder" else if (s.getLen == 0) "empty (0 bytes)" else "not a regular file"
    } catch { case _: FileNotFoundException => "missing" }
    s"$what ($path)"
  }
}
