package org.petastorm.spark.datasource

import java.io.IOException

import org.apache.hadoop.fs.{FileSystem, Path}
import org.apache.hadoop.mapreduce.{JobContext, JobStatus, TaskAttemptContext}
import org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter
import org.apache.parquet.hadoop.ParquetOutputCommitter

/**
 * Parquet's committer plus the dataset metadata: after the job's files are in place, `_common_metadata` is written
 * and only then `_SUCCESS`. A job that fails or is aborted leaves no metadata, and removes the target folder if the
 * job created it and it is empty.
 *
 * Spark aborts a failed job without waiting for the tasks it is still killing, and such a late task can re-create
 * the staging folder after the abort removed it. So the job leaves a marker in its staging folder for as long as it
 * lives: a task that starts after the marker is gone writes nothing, and a task that ends after it is gone removes
 * the staging folder (unless another job's marker is there) and the emptied target the job created.
 */
class PetastormOutputCommitter(output: Path, context: TaskAttemptContext)
  extends ParquetOutputCommitter(output, context) {

  override def setupJob(jobContext: JobContext): Unit = {
    super.setupJob(jobContext)
    jobMarker(jobContext).foreach(marker => fs(jobContext).create(marker, true).close())
  }

  override def commitJob(jobContext: JobContext): Unit = {
    val conf = jobContext.getConfiguration
    val markSuccess = conf.getBoolean(PetastormOutputCommitter.SuccessMarker, true)
    conf.setBoolean(PetastormOutputCommitter.SuccessMarker, false)
    try super.commitJob(jobContext) finally conf.setBoolean(PetastormOutputCommitter.SuccessMarker, markSuccess)
    MetadataCommit.write(conf, output)
    if (markSuccess) fs(jobContext).create(new Path(output, "_SUCCESS"), true).close()
  }

  override def abortJob(jobContext: JobContext, state: JobStatus.State): Unit = {
    super.abortJob(jobContext, state)
    removeCreatedTargetIfEmpty(jobContext)
  }

  override def setupTask(taskContext: TaskAttemptContext): Unit = {
    if (jobEnded(taskContext)) {
      throw new IOException(s"The job writing $output has already ended; task ${taskContext.getTaskAttemptID} writes nothing")
    }
    super.setupTask(taskContext)
  }

  override def commitTask(taskContext: TaskAttemptContext): Unit =
    try super.commitTask(taskContext) finally cleanUpIfJobEnded(taskContext)

  override def abortTask(taskContext: TaskAttemptContext): Unit =
    try super.abortTask(taskContext) finally cleanUpIfJobEnded(taskContext)

  private def fs(jobContext: JobContext): FileSystem = output.getFileSystem(jobContext.getConfiguration)

  private def pending(jobContext: JobContext): Path =
    new Path(getJobAttemptPath(jobContext), FileOutputCommitter.PENDING_DIR_NAME)

  /** Where the job marks itself alive: among the task attempt folders, which job commit neither lists nor moves. */
  private def jobMarker(jobContext: JobContext): Option[Path] =
    Option(jobContext.getConfiguration.get(PetastormOutputCommitter.WriteJobId))
      .map(id => new Path(pending(jobContext), PetastormOutputCommitter.MarkerPrefix + id))

  private def jobEnded(jobContext: JobContext): Boolean = jobMarker(jobContext).exists(m => !fs(jobContext).exists(m))

  private def cleanUpIfJobEnded(taskContext: TaskAttemptContext): Unit = if (jobEnded(taskContext)) {
    val staging = new Path(output, FileOutputCommitter.PENDING_DIR_NAME)
    val fileSystem = fs(taskContext)
    val otherJobs = fileSystem.exists(pending(taskContext)) &&
      fileSystem.listStatus(pending(taskContext)).exists(_.getPath.getName.startsWith(PetastormOutputCommitter.MarkerPrefix))
    if (!otherJobs) fileSystem.delete(staging, true)
    removeCreatedTargetIfEmpty(taskContext)
  }

  private def removeCreatedTargetIfEmpty(jobContext: JobContext): Unit = {
    val fileSystem = fs(jobContext)
    if (jobContext.getConfiguration.getBoolean(PetastormOutputCommitter.CreatedTarget, false) &&
      fileSystem.exists(output) && fileSystem.listStatus(output).isEmpty) {
      fileSystem.delete(output, false)
    }
  }
}

object PetastormOutputCommitter {
  val SuccessMarker = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
  /** Set by the driver when the target folder did not exist before the write. */
  val CreatedTarget = "petastorm.write.created_target"
  /** The write job's id, set by Spark in the configuration of the job and of its tasks. */
  private val WriteJobId = "spark.sql.sources.writeJobUUID"
  private val MarkerPrefix = "_petastorm-job-"
}
