package org.petastorm.spark.datasource

import org.json4s._
import org.json4s.jackson.JsonMethods.{compact, parse, render}
import org.petastorm.spark.tensor.Tensor

/**
 * What the writers of a job observed in its tensor columns, passed from the tasks to the job commit: each file's
 * writer records the dtype of every tensor column and, per dimension, the size if every row agreed, as JSON in its
 * footer under [[ColumnStats.FooterKey]]; the commit merges the files' statistics into the Unischema.
 */
final case class ColumnStats(dtype: String, shape: Seq[Option[Int]]) {
  def merge(column: String, other: ColumnStats): ColumnStats = {
    if (dtype != other.dtype) {
      throw new IllegalArgumentException(s"Column '$column' holds both ${dtype} and ${other.dtype} tensors; " +
        "a Petastorm field has one dtype")
    }
    if (shape.length != other.shape.length) {
      throw new IllegalArgumentException(s"Column '$column' holds tensors of rank ${shape.length} and " +
        s"${other.shape.length}; a Petastorm field has one rank")
    }
    ColumnStats(dtype, shape.zip(other.shape).map { case (a, b) => if (a == b) a else None })
  }
}

object ColumnStats {
  /** Footer key where each written file records the dtype and shapes its tensor columns held. */
  val FooterKey = "petastorm.write.column_stats.v1"

  def of(t: Tensor): ColumnStats = ColumnStats(t.dtype.name, t.shape.map(Some(_)))

  /** `stats` with `seen` merged into column `column`'s statistics. */
  def add(stats: Map[String, ColumnStats], column: String, seen: ColumnStats): Map[String, ColumnStats] =
    stats.updated(column, stats.get(column).map(_.merge(column, seen)).getOrElse(seen))

  def toJson(stats: Map[String, ColumnStats]): String = compact(render(JObject(stats.toList.map { case (c, s) =>
    c -> (JObject("dtype" -> JString(s.dtype), "shape" -> JArray(s.shape.toList.map(_.fold[JValue](JNull)(JInt(_))))): JValue)
  })))

  def fromJson(text: String): Map[String, ColumnStats] = parse(text) match {
    case JObject(items) => items.collect { case (c, o: JObject) =>
      val dtype = (o \ "dtype") match { case JString(d) => d; case _ => "float32" }
      val shape = (o \ "shape") match {
        case JArray(ds) => ds.map { case JInt(d) => Some(d.toInt); case _ => None }
        case _ => Nil
      }
      c -> ColumnStats(dtype, shape)
    }.toMap
    case _ => Map.empty
  }

  def mergeAll(all: Seq[Map[String, ColumnStats]]): Map[String, ColumnStats] =
    all.foldLeft(Map.empty[String, ColumnStats]) { (acc, m) =>
      m.foldLeft(acc) { case (a, (c, s)) => add(a, c, s) }
    }
}
