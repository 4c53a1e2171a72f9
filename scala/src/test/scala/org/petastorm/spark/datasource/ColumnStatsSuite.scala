package org.petastorm.spark.datasource

import org.petastorm.spark.tensor.Tensor
import org.scalatest.funsuite.AnyFunSuite

/** ColumnStats: the statistics that a write's tasks pass to its commit, their JSON form and how they merge. */
class ColumnStatsSuite extends AnyFunSuite {
  private val a = ColumnStats("uint8", Seq(Some(2), Some(3)))

  test("the JSON form, and back") {
    val stats = Map("a" -> a, "b" -> ColumnStats("float64", Seq(None)), "c" -> ColumnStats("int32", Nil))
    assert(ColumnStats.toJson(Map("a" -> ColumnStats("uint8", Seq(Some(2), None)))) ==
      """{"a":{"dtype":"uint8","shape":[2,null]}}""")
    assert(ColumnStats.fromJson(ColumnStats.toJson(stats)) == stats)
    assert(ColumnStats.toJson(Map.empty) == "{}" && ColumnStats.FooterKey == "petastorm.write.column_stats.v1")
  }

  test("reading tolerates what it does not know: missing dtype or shape, entries that are no object") {
    assert(ColumnStats.fromJson("""{"a":{"shape":[1]},"b":{"dtype":"int8"},"c":3}""") ==
      Map("a" -> ColumnStats("float32", Seq(Some(1))), "b" -> ColumnStats("int8", Nil)))
    assert(ColumnStats.fromJson("[1, 2]").isEmpty)
  }

  test("of a tensor: its dtype and every dimension") {
    assert(ColumnStats.of(Tensor.fromInts(Seq(2, 0, 4), Array.emptyIntArray)) == ColumnStats("int32", Seq(Some(2), Some(0), Some(4))))
  }

  test("merging keeps the dimensions both agree on; a second dtype or rank is an error naming the column") {
    assert(a.merge("x", ColumnStats("uint8", Seq(Some(2), Some(5)))) == ColumnStats("uint8", Seq(Some(2), None)))
    assert(a.merge("x", a) == a)
    assert(intercept[IllegalArgumentException](a.merge("x", ColumnStats("int8", Seq(Some(2), Some(3))))).getMessage ==
      "Column 'x' holds both uint8 and int8 tensors; a Petastorm field has one dtype")
    assert(intercept[IllegalArgumentException](a.merge("x", ColumnStats("uint8", Seq(Some(2))))).getMessage ==
      "Column 'x' holds tensors of rank 2 and 1; a Petastorm field has one rank")
  }

  test("add and mergeAll fold the statistics of rows and files column by column") {
    val once = ColumnStats.add(Map.empty, "x", a)
    assert(once == Map("x" -> a))
    assert(ColumnStats.add(once, "x", ColumnStats("uint8", Seq(Some(4), Some(3)))) ==
      Map("x" -> ColumnStats("uint8", Seq(None, Some(3)))))
    val files = Seq(Map("x" -> a), Map("x" -> ColumnStats("uint8", Seq(Some(2), Some(7))), "y" -> ColumnStats("bool", Nil)), Map.empty[String, ColumnStats])
    assert(ColumnStats.mergeAll(files) == Map("x" -> ColumnStats("uint8", Seq(Some(2), None)), "y" -> ColumnStats("bool", Nil)))
    assert(ColumnStats.mergeAll(Nil).isEmpty)
  }
}
