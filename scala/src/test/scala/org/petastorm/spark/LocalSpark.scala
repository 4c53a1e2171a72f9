package org.petastorm.spark

import org.apache.spark.sql.SparkSession
import org.scalatest.{BeforeAndAfterAll, Suite}

/** One `local[2]` session with petastorm's extension, shared by every suite of the test JVM. */
trait LocalSpark extends BeforeAndAfterAll { self: Suite =>
  lazy val spark: SparkSession = LocalSpark.session
}

object LocalSpark {
  lazy val session: SparkSession = {
    val s = SparkSession.builder()
      .master("local[2]")
      .appName("petastorm-scala-tests")
      .config("spark.ui.enabled", "false")
      .config("spark.sql.shuffle.partitions", "2")
      .config("spark.sql.extensions", classOf[PetastormExtensions].getName)
      .getOrCreate()
    s.sparkContext.setLogLevel("ERROR")
    s
  }
}
