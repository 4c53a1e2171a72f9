package org.petastorm.spark.format

import org.scalatest.funsuite.AnyFunSuite

/** Unischema: the JSON form of a dataset's schema. */
class UnischemaSuite extends AnyFunSuite {
  private def json(shape: String) =
    s"""{"version": 1, "name": "S", "fields": [{"name": "a", "dtype": "float32", "shape": $shape, "nullable": false,
       |"codec": {"type": "ndarray"}}]}""".stripMargin

  test("shape dimensions are read exactly: one of 2^32 + 3 is refused, never read as 3") {
    assert(Unischema.fromJson(json("[null, 2147483647]")).fields.head.shape == Seq(None, Some(Int.MaxValue)))
    for (dim <- Seq("4294967299", "2147483648", "-1")) {
      assert(intercept[IllegalArgumentException](Unischema.fromJson(json(s"[$dim]"))).getMessage ==
        s"Field 'a': shape dimensions must be integers from 0 to 2147483647 or null, got $dim")
    }
  }
}
