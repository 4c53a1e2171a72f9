package org.petastorm.spark

/** Scala 2.13 collections that Scala 2.12 lacks, from scala-collection-compat (which Spark 3.5 ships). */
package object compat {
  type ArraySeq[+A] = scala.collection.compat.immutable.ArraySeq[A]
  val ArraySeq: scala.collection.compat.immutable.ArraySeq.type = scala.collection.compat.immutable.ArraySeq
}
