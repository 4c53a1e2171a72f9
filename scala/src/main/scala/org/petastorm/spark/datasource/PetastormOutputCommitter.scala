package org.petastorm.spark.datasource

import java.io.IOException

import org.apache.hadoop.fs.{FileSystem, Path}
import org.apache.hadoop.mapreduce.{JobContext, JobStatus, TaskAttemptContext}
import org.apache.hadoop.mapreduce.lib.output.FileOutputCommitter
import org.apache.parquet.hadoop.ParquetOutputCommitter
import org.apache.parquet.hadoop.metadata.ParquetMetadata

/**
 * Parquet's committer plus the dataset metadata: after the job's files are in place, `_common_metadata` is written
 * and only then `_SUCCESS`. A job that fails or is aborted leaves no metadata, and removes the target folder if the
 * job created it and it is empty. The job commit first checks that the new files' tensor statistics merge (before
 * anything is moved); if it fails after the move, it takes out exactly the files it moved in ([[CommitUndo]]). Task
 * output stays in the job's staging folder until the job commits (the write sets FileOutputCommitter algorithm 1).
 *
 * Spark aborts a failed job without waiting for the tasks it is still killing, and such a late task can re-create
 * the staging folder after the abort removed it. So the job leaves a marker in its staging folder for as long as it
 * lives: a task that starts after the marker is gone writes nothing, and a task that ends after it is gone removes
 * the staging folder (unless another job's marker is there) and the emptied target the job created.
 */
class PetastormOutputCommitter(output: Path, context: TaskAttemptContext)
  extends ParquetOutputCommitter(output, context) {

  /**
   * The files the job commit moves (see [[staged]]) and the footers of its data files, by the path each gets in the
   * dataset: found and checked once, by the first of checkStaged and commitJob, and used by both the undo record and
   * the metadata commit (the move keeps the files' bytes).
   */
  private var checked: Option[(Seq[(Path, Path)], Map[Path, ParquetMetadata])] = None

  override def setupJob(jobContext: JobContext): Unit = {
    AppendCheck.atJobStart(jobContext.getConfiguration, output)
    super.setupJob(jobContext)
    // The marker's name reaches the tasks through the job's configuration (serialized with the tasks, after this).
    // It is Spark's write job UUID where Spark has set it by now; Spark 4.2.0 sets that only after setupJob.
    val conf = jobContext.getConfiguration
    conf.set(PetastormOutputCommitter.MarkerId,
      Option(conf.get(PetastormOutputCommitter.WriteJobId)).getOrElse(java.util.UUID.randomUUID().toString))
    jobMarker(jobContext).foreach(marker => fs(jobContext).create(marker, true).close())
  }

  /** Fails, before any file is moved, when the job's new files cannot make one Unischema (see MetadataCommit). */
  def checkStaged(jobContext: JobContext): Unit = if (checked.isEmpty) {
    val files = staged(jobContext)
    checked = Some(files -> MetadataCommit.checkStaged(jobContext.getConfiguration, files))
  }

  override def commitJob(jobContext: JobContext): Unit = {
    val conf = jobContext.getConfiguration
    checkStaged(jobContext)
    val (files, footers) = checked.get
    val undo = CommitUndo.record(fs(jobContext), output, files.map(_._2))
    var metadataWritten = false
    try {
      val markSuccess = conf.getBoolean(PetastormOutputCommitter.SuccessMarker, true)
      conf.setBoolean(PetastormOutputCommitter.SuccessMarker, false)
      try super.commitJob(jobContext) finally conf.setBoolean(PetastormOutputCommitter.SuccessMarker, markSuccess)
      MetadataCommit.write(conf, output, footers)
      metadataWritten = true
      if (markSuccess) fs(jobContext).create(new Path(output, "_SUCCESS"), true).close()
    } catch {
      case e: Throwable =>
        try undo.undo(metadataWritten) catch { case u: Throwable => e.addSuppressed(u) }
        throw e
    }
  }

  /**
   * The files the job commit will move: each committed task's output (in the job attempt folder) with the path it
   * gets in the dataset, as FileOutputCommitter's merge names it.
   */
  private def staged(jobContext: JobContext): Seq[(Path, Path)] = {
    val fileSystem = fs(jobContext)
    def walk(dir: Path, target: Path): Seq[(Path, Path)] = fileSystem.listStatus(dir).toSeq.flatMap { s =>
      val to = new Path(target, s.getPath.getName)
      if (s.isDirectory) walk(s.getPath, to) else Seq(s.getPath -> to)
    }
    val attempt = getJobAttemptPath(jobContext)
    if (!fileSystem.exists(attempt)) Nil
    else fileSystem.listStatus(attempt).toSeq
      .filter(s => s.isDirectory && s.getPath.getName != FileOutputCommitter.PENDING_DIR_NAME)
      .flatMap(task => walk(task.getPath, output))
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
    Option(jobContext.getConfiguration.get(PetastormOutputCommitter.MarkerId))
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
  /** FileOutputCommitter's algorithm: 1 keeps task output out of the dataset until the job commits. */
  val AlgorithmVersion = "mapreduce.fileoutputcommitter.algorithm.version"
  val SuccessMarker = "mapreduce.fileoutputcommitter.marksuccessfuljobs"
  /** Set by the driver when the target folder did not exist before the write. */
  val CreatedTarget = "petastorm.write.created_target"
  /** The write job's id, set by Spark in the configuration of the job and of its tasks. */
  private val WriteJobId = "spark.sql.sources.writeJobUUID"
  /** The name of the job's marker, set by the driver at job setup. */
  private val MarkerId = "petastorm.write.job_marker"
  private val MarkerPrefix = "_petastorm-job-"
}
