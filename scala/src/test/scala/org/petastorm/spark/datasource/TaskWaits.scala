package org.petastorm.spark.datasource

import org.apache.spark.scheduler.{SparkListener, SparkListenerTaskEnd, SparkListenerTaskStart}
import org.petastorm.spark.LocalSpark
import org.scalatest.Suite

/** For suites whose jobs fail: waiting until the tasks a failed job leaves running have ended, and its messages. */
trait TaskWaits extends LocalSpark { self: Suite =>
  /**
   * Runs `body`, then waits until every task it started has ended: a failed job returns while Spark is still killing
   * its other tasks, and what those tasks leave is part of what a failed write leaves.
   */
  def afterAllTasksEnd[T](body: => T): T = {
    val running = new java.util.concurrent.atomic.AtomicInteger()
    val listener = new SparkListener {
      override def onTaskStart(start: SparkListenerTaskStart): Unit = running.incrementAndGet()
      override def onTaskEnd(end: SparkListenerTaskEnd): Unit = running.synchronized {
        running.decrementAndGet()
        running.notifyAll()
      }
    }
    spark.sparkContext.addSparkListener(listener)
    try {
      val result = body
      org.apache.spark.ListenerBusAccess.drain(spark.sparkContext)
      val deadline = System.nanoTime() + 60L * 1000 * 1000 * 1000
      running.synchronized {
        while (running.get() > 0 && System.nanoTime() < deadline) running.wait(1000)
      }
      assert(running.get() == 0, s"${running.get()} tasks still running a minute after the job ended")
      result
    } finally spark.sparkContext.removeSparkListener(listener)
  }

  /** The messages of `body`'s exception and of its causes, for the error of a failed job. */
  def failure(body: => Any): String = {
    val e = afterAllTasksEnd(thrown(body))
    Iterator.iterate[Throwable](e)(_.getCause).takeWhile(_ != null).map(_.getMessage).mkString(" | ")
  }

  private def thrown(body: => Any): Throwable = try {
    body
    throw new AssertionError("expected the write to fail")
  } catch { case e: Exception => e }
}
