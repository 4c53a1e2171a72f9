package org.petastorm.spark.datasource

import scala.jdk.CollectionConverters._

import org.apache.hadoop.conf.Configuration
import org.apache.parquet.hadoop.api.WriteSupport
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.execution.datasources.parquet.ParquetWriteSupport
import org.petastorm.spark.codec.DecodeLimits

/**
 * Spark's Parquet write support with the Petastorm codecs in front: each row's tensor columns are encoded into
 * their stored bytes, and the file's footer records the dtype and shapes seen, for the Unischema at job commit.
 */
class PetastormWriteSupport extends ParquetWriteSupport {
  private var encoder: RowEncoder = _

  override def init(configuration: Configuration): WriteSupport.WriteContext = {
    // The job's configuration carries the session's SQL confs, the decode limits among them.
    encoder = WritePlan.fromConf(configuration).encoder(DecodeLimits.fromConf(key => Option(configuration.get(key))))
    super.init(configuration)
  }

  override def write(row: InternalRow): Unit = super.write(encoder.encode(row))

  override def finalizeWrite(): WriteSupport.FinalizedWriteContext =
    new WriteSupport.FinalizedWriteContext(Map(ColumnStats.FooterKey -> encoder.statsJson).asJava)
}
