package org.petastorm.spark


import org.petastorm.examples.PetastormScalaExample
import org.petastorm.spark.tensor.Tensor
import org.scalatest.funsuite.AnyFunSuite

class ExamplesSuite extends AnyFunSuite with LocalSpark {
  test("the Scala example writes and reads tensors") {
    val tensors = PetastormScalaExample.run(spark, tempDir("scala-example").resolve("out").toString)
    assert(tensors.length == 8)
    assert(tensors(2) == Tensor.fromFloats(Seq(2, 3), Array(20f, 21f, 22f, 23f, 24f, 25f)))
  }
}
