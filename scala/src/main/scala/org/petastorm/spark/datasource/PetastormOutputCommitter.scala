package org.petastorm.spark.datasource

import org.apache.hadoop.fs.Path
import org.apache.hadoop.mapreduce.{JobContext, JobStatus, TaskAttemptContext}
import org.apache.parquet.hadoop.ParquetOutputCommitter

/**
 * Parquet's committer plus the dataset metadata: after the job's files are in place, `_common_metadata` is written
 * and only then `_SUCCESS`. A job that fails or is aborted leaves no metadata, and removes the target folder if the
 * job created it and it is empty.
 */
class PetastormOutputCommitter(output: Path, context: TaskAttemptContext)
  extends ParquetOutputCommitter(output, context) {

  override def commitJob(jobContext: JobContext): Unit = {
    val conf = jobContext.getConfiguration
    val markSuccess = conf.getBoolean(PetastormOutputCommitter.SuccessMarker, true)
    conf.setBoolean(PetastormOutputCommitter.SuccessMarker, false)
    try super.commitJob(jobContext) finally conf.setBoolean(PetastormOutputCommitter.SuccessMarker, markSuccess)
    MetadataCommit.write(conf, output)
    if (markSuccess) output.getFileSystem(conf).create(new Path(output, "_SUCCESS"), true).close()
  }

  override def abortJob(jobContext: JobContext, state: JobStatus.State): Unit = {
    super.abortJob(jobContext, state)
    val fs = output.getFileSystem(jobContext.getConfiguration)
    if (jobContext.getConfiguration.getBoolean(PetastormOutputCommitter.CreatedTarget, false) &&
      fs.exists(output) && fs.listStatus(output).isEmpty) {
      fs.delete(output, false)
    }
  }
}

object PetastormOutputCommitter {
  val SuccessMarker = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
  /** Set by the driver when the target folder did not exist before the write. */
  val CreatedTarget = "petastorm.write.created_target"
}
