package org.petastorm.spark

import java.io.File
import java.nio.file.{Files, Path}

import org.apache.spark.sql.SparkSession
import org.scalatest.{BeforeAndAfterAll, Suite}

/** One `local[2]` session (two attempts per task) with petastorm's extension, shared by every suite of the test JVM,
  * and a temporary folder per suite (`tempDir`) that is removed when the suite ends. */
trait LocalSpark extends BeforeAndAfterAll { self: Suite =>
  lazy val spark: SparkSession = LocalSpark.session

  private lazy val suiteDir: Path = Files.createTempDirectory(LocalSpark.root, getClass.getSimpleName)

  /** A new empty folder under this suite's temporary folder. */
  def tempDir(prefix: String): Path = Files.createTempDirectory(suiteDir, prefix)

  override protected def afterAll(): Unit = {
    try LocalSpark.deleteRecursively(suiteDir.toFile)
    finally super.afterAll()
  }
}

object LocalSpark {
  /** Every suite's temporary folder lives here; removed when the test JVM exits. */
  lazy val root: Path = {
    val dir = Files.createTempDirectory("petastorm-scala-tests")
    sys.addShutdownHook(deleteRecursively(dir.toFile))
    dir
  }

  lazy val session: SparkSession = {
    val s = SparkSession.builder()
      .master("local[2,2]") // two attempts per task, so retried tasks can be tested
      .appName("petastorm-scala-tests")
      .config("spark.ui.enabled", "false")
      .config("spark.sql.warehouse.dir", Files.createTempDirectory(root, "warehouse").toString)
      .config("spark.sql.shuffle.partitions", "2")
      .config("spark.sql.extensions", classOf[PetastormExtensions].getName)
      .config("spark.sql.sources.commitProtocolClass", classOf[datasource.PetastormCommitProtocol].getName)
      .getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    s
  }

  def deleteRecursively(file: File): Unit = {
    if (file.isDirectory && !Files.isSymbolicLink(file.toPath)) Option(file.listFiles()).foreach(_.foreach(deleteRecursively))
    file.delete()
  }
}
