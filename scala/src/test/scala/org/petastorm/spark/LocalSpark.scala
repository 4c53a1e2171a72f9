package org.petastorm.spark

import org.apache.spark.sql.SparkSession
import org.scalatest.{BeforeAndAfterAll, Suite}

/** One `local[2]` session (two attempts per task) with petastorm's extension, shared by every suite of the test JVM. */
trait LocalSpark extends BeforeAndAfterAll { self: Suite =>
  lazy val spark: SparkSession = LocalSpark.session
}

object LocalSpark {
  lazy val session: SparkSession = {
    val s = SparkSession.builder()
      .master("local[2,2]") // two attempts per task, so retried tasks can be tested
      .appName("petastorm-scala-tests")
      .config("spark.ui.enabled", "false")
      .config("spark.sql.warehouse.dir", java.nio.file.Files.createTempDirectory("petastorm-warehouse").toString)
      .config("spark.sql.shuffle.partitions", "2")
      .config("spark.sql.extensions", classOf[PetastormExtensions].getName)
      .config("spark.sql.sources.commitProtocolClass", classOf[datasource.PetastormCommitProtocol].getName)
      .getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    s
  }
}
