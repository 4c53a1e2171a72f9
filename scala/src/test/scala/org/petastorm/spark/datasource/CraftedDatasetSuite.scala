package org.petastorm.spark.datasource

import java.io.File
import java.nio.file.Files

import scala.concurrent.{Await, Future}
import scala.concurrent.ExecutionContext.Implicits.global
import scala.concurrent.duration._
import scala.jdk.CollectionConverters._

import org.apache.hadoop.fs.Path
import org.apache.parquet.hadoop.ParquetFileReader
import org.apache.parquet.hadoop.util.HadoopInputFile
import org.apache.spark.sql.functions.col
import org.apache.spark.sql.types.IntegerType
import org.petastorm.spark.LocalSpark
import org.petastorm.spark.format.{DatasetFiles, DatasetMetadata}
import org.petastorm.spark.functions.array_to_tensor
import org.scalatest.funsuite.AnyFunSuite

/**
 * Crafted or broken datasets give a clear error naming the file (and the metadata key), never rows silently missing,
 * a file outside the dataset, or a read that blocks for ever.
 */
class CraftedDatasetSuite extends AnyFunSuite with LocalSpark {
  private val Key = DatasetMetadata.RowGroupsPerFileKey

  /** A dataset of 20 rows in 4 files under p=0 and p=1, and its root. */
  private def dataset(): File = {
    val root = tempDir("petastorm-crafted").resolve("ds").toFile
    spark.range(0, 20, 1, 2).select(col("id").cast(IntegerType).as("id"), (col("id") % 2).cast(IntegerType).as("p"),
      array_to_tensor(org.apache.spark.sql.functions.array(col("id").cast("float")), Seq(1)).as("t"))
      .write.partitionBy("p").format("petastorm").save(root.toString)
    assert(spark.read.format("petastorm").load(root.toString).count() == 20)
    root
  }

  private def partFiles(root: File): Seq[String] = counts(root).keys.toSeq.sorted

  private def counts(root: File): Map[String, Int] = DatasetMetadata.parseRowGroups(new String(
    DatasetMetadata.read(spark.sessionState.newHadoopConf(), new Path(root.toString))(Key), "UTF-8"))

  /** Rewrites `_common_metadata` with the row-group listing replaced by `json`. */
  private def setListing(root: File, json: String): Unit = {
    val conf = spark.sessionState.newHadoopConf()
    val path = new Path(root.toString)
    val reader = ParquetFileReader.open(HadoopInputFile.fromPath(new Path(path, "_common_metadata"), conf))
    val footer = try reader.getFooter.getFileMetaData finally reader.close()
    DatasetMetadata.write(conf, path, footer.getSchema, footer.getKeyValueMetaData.asScala.toMap.updated(Key, json))
  }

  /** The error of reading the dataset, within a minute (a read that blocks fails the test instead of hanging it). */
  private def readError(root: File, format: String = "petastorm"): String = {
    val attempt = Future(scala.util.Try(spark.read.format(format).load(root.toString).collect()))
    Await.result(attempt, 1.minute) match {
      case scala.util.Failure(e) =>
        Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
      case scala.util.Success(rows) => fail(s"read ${rows.length} rows without an error")
    }
  }

  private def listing(root: File): Seq[String] =
    Files.walk(root.toPath).iterator().asScala.map(p => root.toPath.relativize(p).toString).toSeq.sorted

  private def replace(root: File, relative: String)(make: java.nio.file.Path => Unit): java.nio.file.Path = {
    val file = root.toPath.resolve(relative)
    Files.delete(file)
    Files.deleteIfExists(file.resolveSibling(s".${file.getFileName}.crc"))
    make(file)
    file
  }

  test("a listed part file that is empty, a dangling link, a named pipe or a folder is an error naming it") {
    val cases: Seq[(String, java.nio.file.Path => Unit)] = Seq(
      "empty (0 bytes)" -> (f => Files.createFile(f)),
      "a dangling symbolic link" -> (f => Files.createSymbolicLink(f, f.resolveSibling("gone.parquet"))),
      "not a regular file (a named pipe" -> (f => assert(new ProcessBuilder("mkfifo", f.toString).start().waitFor() == 0)),
      "a folder" -> (f => Files.createDirectory(f)),
      "missing" -> (_ => ()))
    cases.foreach { case (what, make) =>
      val root = dataset()
      val victim = partFiles(root).last
      replace(root, victim)(make)
      val error = readError(root)
      assert(error.contains(s"$Key of file:$root/_common_metadata names $victim, which is $what"), error)
    }
  }

  test("the row-group listing cannot name files outside the dataset or hidden ones") {
    val root = dataset()
    val outside = new File(root.getParentFile, "other")
    outside.mkdirs()
    Files.copy(root.toPath.resolve(partFiles(root).head), outside.toPath.resolve("secret.parquet"))
    val first = partFiles(root).head
    Seq("../other/secret.parquet", "/etc/passwd", "p=0/../../escape.parquet", "p=0/_hidden.parquet", "./p=0/x.parquet",
      "p=0//x.parquet").foreach { name =>
      setListing(root, s"""{"$first": 1, "$name": 3}""")
      val error = readError(root)
      assert(error.contains(s"names '$name', which is not a data file path inside the dataset"), error)
    }
  }

  test("a row-group count that is not a non-negative integer is an error naming the file") {
    val root = dataset()
    val first = partFiles(root).head
    Seq("-1", "1.5", "\"2\"", "null").foreach { count =>
      setListing(root, s"""{"$first": $count}""")
      assert(readError(root).contains(s"gives $first the row-group count $count; expected a non-negative integer"))
    }
    setListing(root, "[1, 2]")
    assert(readError(root).contains(s"$Key of file:$root/_common_metadata is not a JSON object"))
  }

  test("a named pipe or an empty file among the part files is refused by name before any file is opened") {
    val root = dataset()
    val pipe = root.toPath.resolve("p=0/part-9.parquet")
    assert(new ProcessBuilder("mkfifo", pipe.toString).start().waitFor() == 0)
    val error = readError(root)
    assert(error.contains(s"file:$pipe is not a regular file (a named pipe, socket or device?)"), error)
    Files.delete(pipe)
    val empty = Files.createFile(root.toPath.resolve("p=1/part-9.parquet"))
    assert(readError(root).contains(s"file:$empty is empty (0 bytes), not a Parquet file"))
    Files.delete(empty)
    val folder = Files.createDirectory(root.toPath.resolve("p=1/extra.parquet"))
    assert(readError(root).contains(s"file:$folder is a folder, not a Parquet data file"))
    Files.delete(folder)
    assert(spark.read.format("petastorm").load(root.toString).count() == 20)
  }

  test("the same checks guard a dataset without a row-group listing, and the FileFormat read path") {
    val root = dataset()
    new File(root, "_common_metadata").delete()
    new File(root, "._common_metadata.crc").delete()
    val empty = Files.createFile(root.toPath.resolve("p=0/part-9.parquet"))
    assert(readError(root).contains(s"file:$empty is empty (0 bytes)"))
    val withListing = dataset()
    replace(withListing, partFiles(withListing).head)(f => Files.createFile(f))
    assert(readError(withListing, classOf[PetastormFileFormat].getName).contains("which is empty (0 bytes)"))
  }

  test("the FileFormat read path checks the files when the relation is resolved, and again for every later scan") {
    val root = dataset()
    val df = spark.read.format(classOf[PetastormFileFormat].getName).load(root.toString)
    assert(df.count() == 20)
    val empty = Files.createFile(root.toPath.resolve("p=0/part-9.parquet"))
    val error = Iterator.iterate[Throwable](intercept[Exception](df.collect()))(_.getCause).takeWhile(_ != null)
      .map(_.getMessage).mkString(" | ")
    assert(error.contains(s"file:$empty is empty (0 bytes)"), error)
  }

  test("the check returns the _common_metadata it read for the listing, and nothing for a single file") {
    val root = dataset()
    val conf = spark.sessionState.newHadoopConf()
    val path = new Path(root.toString)
    def text(m: Map[String, Array[Byte]]) = m.map { case (k, v) => k -> v.toSeq }
    assert(text(DatasetFiles.check(conf, path)) == text(DatasetMetadata.read(conf, path)))
    assert(DatasetFiles.check(conf, path).contains(Key))
    assert(DatasetFiles.check(conf, new Path(path, partFiles(root).head)).isEmpty)
    assert(DatasetFiles.check(conf, new Path(path, "absent")).isEmpty)
    assert(DatasetMetadata.dataFiles(conf, path).map(f => DatasetMetadata.relativePath(path, f.getPath)) ==
      partFiles(root))
  }

  test("an append to a dataset whose files disagree with its listing is refused before it writes") {
    val root = dataset()
    val victim = partFiles(root).head
    replace(root, victim)(_ => ())
    val more = spark.range(20, 22).select(col("id").cast(IntegerType).as("id"), (col("id") % 2).cast(IntegerType).as("p"),
      array_to_tensor(org.apache.spark.sql.functions.array(col("id").cast("float")), Seq(1)).as("t"))
    val before = listing(root)
    val e = intercept[Exception](more.write.partitionBy("p").mode("append").format("petastorm").save(root.toString))
    val error = Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
    assert(error.contains(s"names $victim, which is missing"), error)
    assert(listing(root) == before)
  }
}
