package org.petastorm.spark

/** Scala 2.13 collections under one name for every Scala binary built (see scala-2.12/ for the other). */
package object compat {
  type ArraySeq[+A] = scala.collection.immutable.ArraySeq[A]
  val ArraySeq: scala.collection.immutable.ArraySeq.type = scala.collection.immutable.ArraySeq
}
