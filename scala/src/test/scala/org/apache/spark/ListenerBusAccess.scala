package org.apache.spark

/** Test access to Spark's listener bus, to wait until listeners have seen every event of a finished job. */
object ListenerBusAccess {
  def drain(sc: SparkContext): Unit = sc.listenerBus.waitUntilEmpty()
}
