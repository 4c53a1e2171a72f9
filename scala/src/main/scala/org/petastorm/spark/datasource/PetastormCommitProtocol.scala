package org.petastorm.spark.datasource

import java.util.concurrent.ConcurrentHashMap

import org.apache.hadoop.fs.{FileSystem, Path}
import org.apache.hadoop.mapreduce.{JobContext, OutputCommitter, TaskAttemptContext}
import org.apache.spark.internal.io.FileCommitProtocol.TaskCommitMessage
import org.apache.spark.sql.execution.datasources.SQLHadoopMapReduceCommitProtocol

/**
 * Spark's commit protocol with the deletions of an overwrite put off until the job commits, so that an overwrite
 * that fails leaves the previous data in place (Spark deletes it before writing). Enabled with
 * `spark.sql.sources.commitProtocolClass=org.petastorm.spark.datasource.PetastormCommitProtocol`, which
 * `petastorm.spark.configure_spark` sets unless another protocol is configured; it serves every file format. For a
 * petastorm write, the checks its committer makes before moving files run before those deletions too.
 */
class PetastormCommitProtocol(jobId: String, path: String, dynamicPartitionOverwrite: Boolean)
  extends SQLHadoopMapReduceCommitProtocol(jobId, path, dynamicPartitionOverwrite) {

  def this(jobId: String, path: String) = this(jobId, path, false)

  @transient private var deferred = Vector.empty[(FileSystem, Path, Boolean)]
  @transient private var petastormCommitter: Option[PetastormOutputCommitter] = None

  override def setupCommitter(context: TaskAttemptContext): OutputCommitter = {
    val committer = super.setupCommitter(context)
    petastormCommitter = Some(committer).collect { case c: PetastormOutputCommitter => c }
    committer
  }

  override def deleteWithJob(fs: FileSystem, target: Path, recursive: Boolean): Boolean = {
    deferred :+= ((fs, target, recursive))
    PetastormCommitProtocol.pending.add(fs.makeQualified(target).toString)
    true
  }

  override def commitJob(jobContext: JobContext, taskCommits: Seq[TaskCommitMessage]): Unit = {
    petastormCommitter.foreach(_.checkStaged(jobContext))
    deferred.foreach { case (fs, target, recursive) => deleteKeepingJobFiles(fs, target, recursive) }
    forget()
    super.commitJob(jobContext, taskCommits)
  }

  override def abortJob(jobContext: JobContext): Unit = {
    forget()
    super.abortJob(jobContext)
  }

  private def forget(): Unit = {
    deferred.foreach { case (fs, target, _) => PetastormCommitProtocol.pending.remove(fs.makeQualified(target).toString) }
    deferred = Vector.empty
  }

  /** Deletes `target`; inside the output folder itself, everything but this job's staged files. */
  private def deleteKeepingJobFiles(fs: FileSystem, target: Path, recursive: Boolean): Unit = {
    val output = fs.makeQualified(new Path(path))
    if (fs.makeQualified(target) == output && fs.exists(output)) {
      fs.listStatus(output).filterNot(s => PetastormCommitProtocol.isJobStaging(s.getPath.getName))
        .foreach(s => fs.delete(s.getPath, true))
    } else fs.delete(target, recursive)
  }
}

object PetastormCommitProtocol {
  private val pending = ConcurrentHashMap.newKeySet[String]()

  /** True while an overwrite of `qualifiedPath` waits for its job to commit. */
  def overwritePending(qualifiedPath: String): Boolean = pending.contains(qualifiedPath)

  private def isJobStaging(name: String): Boolean = name == "_temporary" || name.startsWith(".spark-staging")
}
