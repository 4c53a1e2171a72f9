package org.petastorm.spark.datasource

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.petastorm.spark.format.{DatasetFiles, FieldCodec, Unischema, UnischemaField}
import org.petastorm.spark.tensor.Tensor

/**
 * What an append must agree on with the dataset it adds to, whose Unischema (`_common_metadata`) stays as it is.
 * On the driver, when the job starts (before any task runs): the dataset's files (see DatasetFiles), the column names, the Spark type of every natively stored column, the codec
 * of every column, and the dtype and shape of a tensor column as far as the write plan knows them. In the tasks, for
 * each tensor cell (whose dtype and shape only the data knows): the stored field's dtype and shape, a `None`
 * dimension matching any size. A disagreement is an IllegalArgumentException naming the column, what the dataset
 * stores and what the new data has, so a failing append stops before any of its files reaches the dataset.
 */
object AppendCheck {
  /**
   * Run by the committer's setupJob, after an overwrite has cleared the target (or, with PetastormCommitProtocol,
   * deferred clearing it): when `root` holds a dataset this job adds to, checks it against the job's write plan and
   * records its Unischema in `conf`, where the tasks' encoders and the job commit find it.
   */
  def atJobStart(conf: Configuration, root: Path): Unit = {
    val fs = root.getFileSystem(conf)
    if (fs.exists(root) && !PetastormCommitProtocol.overwritePending(fs.makeQualified(root).toString)) {
      DatasetFiles.checkedSchema(conf, root).foreach { stored =>
        columns(root, stored, WritePlan.fromConf(conf))
        conf.set(WritePlan.StoredKey, stored.toJson)
      }
    }
  }

  /** Checks the columns of `plan` against the dataset's stored Unischema. */
  def columns(root: Path, stored: Unischema, plan: WritePlan): Unit = {
    def fail(message: String) = throw new IllegalArgumentException(s"Cannot append to $root: $message")
    val proposed = plan.unischema(stored.name, Map.empty)
    val storedNames = stored.fields.map(_.name)
    plan.columns.zip(proposed.fields).foreach { case (column, field) =>
      val before = stored.field(field.name).getOrElse(
        fail(s"column '${field.name}' is not in the dataset (columns: ${storedNames.mkString(", ")})"))
      mismatch(column, field, before).foreach(m => fail(s"column '${field.name}' $m"))
    }
    val missing = storedNames.filterNot(n => proposed.field(n).isDefined)
    if (missing.nonEmpty) fail(s"the new data lacks ${missing.mkString(", ")}")
  }

  /** Checks one tensor cell of an appended column against the field the dataset stores. */
  def cell(stored: UnischemaField, t: Tensor): Unit =
    if (t.dtype.name != stored.dtype || !fits(t.shape.map(Some(_)), stored.shape)) {
      throw new IllegalArgumentException(s"the dataset stores ${stored.dtype} tensors of shape " +
        s"${describe(stored.shape)}; this row holds a ${t.dtype.name} tensor of shape ${describe(t.shape.map(Some(_)))}")
    }

  /** Why the new column cannot be appended to the stored field, if it cannot. */
  private def mismatch(column: ColumnPlan, field: UnischemaField, before: UnischemaField): Option[String] = {
    def differs(has: String) = Some(s"is stored as ${before.dtype}${shapeText(before.shape)} with codec " +
      s"${codecName(before.codec)}; the new data has $has")
    column.tensor match {
      case Some((source, codec)) =>
        val (dtype, shape) = known(source)
        if (!before.codec.contains(codec)) differs(s"codec ${codecName(Some(codec))}")
        else if (dtype.exists(_ != before.dtype)) differs(s"${dtype.get} tensors")
        else if (shape.exists(s => !fits(s, before.shape))) differs(s"tensors of shape ${describe(shape.get)}")
        else None
      case None => (before.codec, field.codec) match {
        case (Some(b: FieldCodec.Scalar), Some(f)) if b == f => None // the Spark type decides; the dtype stays
        case (None, _) if before.dtype == field.dtype && before.shape.length == field.shape.length => None
        case _ => differs(s"${field.dtype}${shapeText(field.shape)} with codec ${codecName(field.codec)}")
      }
    }
  }

  /** The dtype and shape that the column's source fixes before any row is seen (None where the data decides). */
  private def known(source: TensorSource): (Option[String], Option[Seq[Option[Int]]]) = source match {
    case TensorSource.VectorColumn => (Some("float64"), Some(Seq(None)))
    case TensorSource.ArrayColumn(_, dtype, shape) => (Some(dtype.name), Some(shape.map(d => if (d < 0) None else Some(d))))
    case TensorSource.TensorColumn | TensorSource.ImageBytes => (None, None)
  }

  /** A shape fits a stored one of the same rank whose fixed dimensions it has (unknown dimensions fit any). */
  private def fits(shape: Seq[Option[Int]], stored: Seq[Option[Int]]): Boolean =
    shape.length == stored.length && shape.zip(stored).forall {
      case (Some(d), Some(s)) => d == s
      case _ => true
    }

  private def describe(shape: Seq[Option[Int]]): String =
    shape.map(_.map(_.toString).getOrElse("None")).mkString("(", ", ", if (shape.length == 1) ",)" else ")")

  private def shapeText(shape: Seq[Option[Int]]): String = if (shape.isEmpty) "" else " " + describe(shape)

  private def codecName(codec: Option[FieldCodec]): String = codec match {
    case None => "none"
    case Some(FieldCodec.Scalar(t)) => s"scalar(${t.simpleString})"
    case Some(FieldCodec.Ndarray) => "ndarray"
    case Some(FieldCodec.CompressedNdarray) => "compressed_ndarray"
    case Some(FieldCodec.Image(format, quality)) => if (format == "jpeg") s"jpeg:$quality" else format
  }
}
