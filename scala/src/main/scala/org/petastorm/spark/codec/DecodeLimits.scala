package org.petastorm.spark.codec

import java.util.Locale

/**
 * Decode limits: bounds checked from a cell's header before anything is decoded or allocated, so that a crafted
 * cell of a few bytes (an NPY header claiming billions of elements, a ZIP bomb, a PNG claiming 30000 x 30000
 * pixels) fails with an error naming the size claimed and the limit instead of making the JVM run out of memory.
 * `maxCellBytes` bounds an array cell (NPY shape x item size; the `arr.npy` member of a compressed ndarray, as its
 * ZIP directory states it), `maxImagePixels` an image (width x height from its header). The defaults are those of
 * the Python reader's `DecodeLimits`; the session confs [[DecodeLimits.MaxCellBytesConf]] and
 * [[DecodeLimits.MaxImagePixelsConf]] change them, the `petastorm` source's read options of the same names too.
 */
final case class DecodeLimits(maxCellBytes: Long = DecodeLimits.DefaultMaxCellBytes,
                              maxImagePixels: Long = DecodeLimits.DefaultMaxImagePixels) {
  require(maxCellBytes > 0, s"maxCellBytes must be positive, got $maxCellBytes")
  require(maxImagePixels > 0, s"maxImagePixels must be positive, got $maxImagePixels")

  import DecodeLimits._

  /** Refuses an array of `elements` items of `itemSize` bytes, as an NPY header claims it, over `maxCellBytes`. */
  def checkArray(elements: Long, itemSize: Long): Unit =
    if (itemSize > 0 && elements > maxCellBytes / itemSize) {
      throw cellBytesError("the NPY header claims an array", BigInt(elements) * itemSize)
    }

  /** Refuses a ZIP member whose directory entry states more than `maxCellBytes` uncompressed bytes. */
  def checkZipMember(name: String, size: Long): Unit =
    if (size > maxCellBytes) throw cellBytesError(s"the ZIP directory claims a member '$name'", BigInt(size))

  /** Refuses an image whose header claims more than `maxImagePixels` pixels (width and height are unsigned). */
  def checkImage(width: Long, height: Long): Unit =
    if (width > 0 && height > maxImagePixels / width) {
      val pixels = number(BigInt(width) * height)
      throw new DecodeLimitException(s"the image's header claims $width x $height = $pixels pixels, over the limit " +
        s"of ${number(maxImagePixels)} ($MaxImagePixels); ${hint(MaxImagePixels, MaxImagePixelsConf)}")
    }

  /** The error for `what` (a header's claim, in words) taking `size` bytes, over `maxCellBytes`. */
  def cellBytesError(what: String, size: BigInt): DecodeLimitException =
    new DecodeLimitException(s"$what of ${number(size)} bytes, over the limit of ${number(maxCellBytes)} " +
      s"($MaxCellBytes); ${hint(MaxCellBytes, MaxCellBytesConf)}")
}

object DecodeLimits {
  /** 512 MiB, as in the Python reader. */
  val DefaultMaxCellBytes: Long = 512L * 1024 * 1024
  /** Pillow's `Image.MAX_IMAGE_PIXELS`, as in the Python reader. */
  val DefaultMaxImagePixels: Long = 89478485L
  val Default: DecodeLimits = DecodeLimits()

  /** The names of the limits, as the `petastorm` source's read options spell them. */
  val MaxCellBytes = "maxCellBytes"
  val MaxImagePixels = "maxImagePixels"
  /** The session confs that set the limits of `load_image` and `decode_image`, and of reads without the options. */
  val MaxCellBytesConf = "spark.petastorm.maxCellBytes"
  val MaxImagePixelsConf = "spark.petastorm.maxImagePixels"

  /** A limit as written in an option or a conf: a positive whole number; None for anything else. */
  def parseLimit(text: String): Option[Long] = Option(text).flatMap(t => scala.util.Try(t.trim.toLong).toOption).filter(_ > 0)

  /** The limits that confs set (looked up with `conf`), the defaults for those they do not set. */
  def fromConf(conf: String => Option[String]): DecodeLimits = {
    def limit(key: String, unit: String, default: Long): Long = conf(key).fold(default) { text =>
      parseLimit(text).getOrElse(throw new IllegalArgumentException(
        s"$key = '$text': expected a positive whole number of $unit"))
    }
    DecodeLimits(limit(MaxCellBytesConf, "bytes", DefaultMaxCellBytes),
      limit(MaxImagePixelsConf, "pixels", DefaultMaxImagePixels))
  }

  private def number(n: BigInt): String = String.format(Locale.ROOT, "%,d", n.bigInteger)

  private def hint(option: String, conf: String): String =
    s"raise it with the read option $option or the session conf $conf if the data really needs it"
}

/**
 * A cell whose header claims more than a [[DecodeLimits]] limit allows. An IllegalArgumentException, as for any
 * cell that cannot be decoded, so that the reader names the field and file and `decode_image` applies its onError.
 */
final class DecodeLimitException(message: String) extends IllegalArgumentException(message)
