package org.petastorm.spark.image

import java.io.{ObjectInputStream, ObjectOutputStream}

import org.apache.hadoop.conf.Configuration
import org.apache.spark.SparkContext
import org.apache.spark.sql.internal.SQLConf

/**
 * The Hadoop configuration of the session that analysed a query, carried to the executors inside the expressions
 * that read files, so that file systems (s3a, abfs, hdfs, ...) see the session's settings and credentials there.
 */
final class SessionHadoopConf(@transient private var conf: Configuration) extends Serializable {
  def value: Configuration = conf

  private def writeObject(out: ObjectOutputStream): Unit = {
    out.defaultWriteObject()
    conf.write(out)
  }

  private def readObject(in: ObjectInputStream): Unit = {
    in.defaultReadObject()
    conf = new Configuration(false)
    conf.readFields(in)
  }

  // An input of the query rather than part of an expression's identity: equal plans stay equal (and cacheable).
  override def equals(other: Any): Boolean = other.isInstanceOf[SessionHadoopConf]
  override def hashCode: Int = classOf[SessionHadoopConf].hashCode
  override def toString: String = "hadoopConf"
}

object SessionHadoopConf {
  /**
   * The active session's Hadoop configuration, built as Spark builds it for file sources: the context's
   * configuration overlaid with the session's SQL conf entries. Call it on the driver while a query is analysed.
   */
  def current(): SessionHadoopConf = {
    val conf = new Configuration(SparkContext.getOrCreate().hadoopConfiguration)
    SQLConf.get.getAllConfs.foreach { case (k, v) => if (v != null) conf.set(k, v) }
    new SessionHadoopConf(conf)
  }
}
