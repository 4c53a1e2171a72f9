package org.petastorm.spark.datasource

import java.util.UUID

import org.apache.hadoop.fs.{FileSystem, Path}
import org.apache.hadoop.io.IOUtils
import org.petastorm.spark.format.DatasetMetadata

/**
 * What a job commit is about to move into the dataset, recorded before the move, so that a commit that fails after
 * it (in the metadata commit, say) takes exactly that back out: the files the move brings in (never one that was
 * there before), the folders it creates (once empty again) and, when the metadata was rewritten, `_common_metadata`
 * as it was. Nothing else in the dataset is touched.
 */
final class CommitUndo private (fs: FileSystem, root: Path, files: Seq[Path], folders: Seq[Path],
                                metadata: Option[Array[Byte]]) {
  /** Removes what the commit moved in; with `metadataWritten`, puts the previous `_common_metadata` back. */
  def undo(metadataWritten: Boolean): Unit = {
    files.foreach(f => fs.delete(f, false))
    folders.sortBy(-_.depth).foreach { d =>
      if (fs.exists(d) && fs.listStatus(d).isEmpty) fs.delete(d, false)
    }
    if (metadataWritten) restoreMetadata()
  }

  private def restoreMetadata(): Unit = {
    val target = new Path(root, DatasetMetadata.CommonMetadataFile)
    metadata match {
      case None => fs.delete(target, false)
      case Some(bytes) =>
        val staging = new Path(root, s".${DatasetMetadata.CommonMetadataFile}.${UUID.randomUUID()}.tmp")
        val out = fs.create(staging, true)
        try out.write(bytes) finally out.close()
        fs.delete(target, false)
        if (!fs.rename(staging, target)) throw new java.io.IOException(s"Could not move $staging to $target")
    }
  }
}

object CommitUndo {
  /** Records, before the move, what moving files to `targets` (paths under `root`) will add to the dataset. */
  def record(fs: FileSystem, root: Path, targets: Seq[Path]): CommitUndo = {
    val folders = targets.flatMap(t => Iterator.iterate(t.getParent)(_.getParent).takeWhile(p => p != null && p.depth > root.depth))
      .distinct.filterNot(fs.exists)
    val metadataFile = new Path(root, DatasetMetadata.CommonMetadataFile)
    val metadata = if (!fs.exists(metadataFile)) None else {
      val in = fs.open(metadataFile)
      try {
        val bytes = new Array[Byte](fs.getFileStatus(metadataFile).getLen.toInt)
        IOUtils.readFully(in, bytes, 0, bytes.length)
        Some(bytes)
      } finally in.close()
    }
    new CommitUndo(fs, root, targets.filterNot(fs.exists), folders, metadata)
  }
}
