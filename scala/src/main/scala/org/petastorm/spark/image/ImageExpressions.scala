package org.petastorm.spark.image

import java.io.IOException

import org.apache.hadoop.fs.{LocalFileSystem, Path}
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.analysis.TypeCheckResult
import org.apache.spark.sql.catalyst.expressions.{Expression, UnaryExpression}
import org.apache.spark.sql.catalyst.expressions.codegen.CodegenFallback
import org.apache.spark.sql.types.{BinaryType, DataType, StringType}
import org.petastorm.spark.codec.{DecodeLimitException, DecodeLimits, ImageCodec}
import org.petastorm.spark.tensor.{TensorExpressions, TensorUDT}

/**
 * Decoding shared by `load_image` and `decode_image`: channel conversion, then the optional resize. An image whose
 * header claims more pixels than `limits` allow fails like an undecodable one (see [[OnImageError]]).
 */
private[image] trait ImageDecoding extends Expression {
  def size: Option[(Int, Int)]
  def channels: Option[Int]
  def onError: OnImageError
  /** The decode limits of the session that analysed the query. */
  def limits: DecodeLimits

  override def dataType: DataType = TensorUDT()
  override def nullable: Boolean = true

  protected def decoded(bytes: Array[Byte]): InternalRow = {
    val image = ImageCodec.decode(bytes, channels, limits)
    TensorUDT.write(size.fold(image) { case (height, width) => ImageResize.resize(image, height, width) })
  }
}

/**
 * `load_image(path[, height, width[, channels]])`: the image file at `path`, read through Hadoop's FileSystem with
 * the session's Hadoop configuration, as a uint8 (uint16 for 16-bit PNG) tensor of shape `(H, W, C)`, optionally
 * converted to `channels` and resized. A null path gives null; an unreadable file, a file longer than the decode
 * limits' `maxCellBytes`, undecodable bytes or an image over the decode limits are handled by `onError`.
 */
case class LoadImage(
    child: Expression,
    size: Option[(Int, Int)],
    channels: Option[Int],
    onError: OnImageError,
    limits: DecodeLimits,
    hadoopConf: SessionHadoopConf) extends UnaryExpression with ImageDecoding with CodegenFallback {

  override def checkInputDataTypes(): TypeCheckResult = child.dataType match {
    case _: StringType => TypeCheckResult.TypeCheckSuccess
    case other => TypeCheckResult.TypeCheckFailure(s"$prettyName expects a path string, got ${other.simpleString}")
  }

  override protected def nullSafeEval(input: Any): Any = {
    val path = input.toString
    try decoded(read(path)) catch {
      case e: IOException => onError(prettyName, s"'$path'", e)
      case e: IllegalArgumentException => onError(prettyName, s"'$path'", e)
    }
  }

  /**
   * The file's bytes. Its length, from the FileSystem, is checked first: a file longer than `maxCellBytes` (or than
   * an array holds) is refused before anything is read.
   */
  private def read(path: String): Array[Byte] = {
    val file = new Path(path)
    val fs = file.getFileSystem(hadoopConf.value)
    // A missing file raises FileNotFoundException here: OnImageError says "file not found".
    val length = fs.getFileStatus(file).getLen
    if (length > limits.maxCellBytes) throw limits.cellBytesError(s"the file '$path' has a length", length)
    if (length > LoadImage.MaxFileBytes) {
      throw new DecodeLimitException(s"the file '$path' has a length of $length bytes, over the " +
        s"${LoadImage.MaxFileBytes} bytes an image file may have")
    }
    val in = fs match {
      // Local files (images carry no .crc files): read directly, skipping Hadoop's checksum and stream layers.
      case local: LocalFileSystem => java.nio.file.Files.newInputStream(local.pathToFile(file).toPath)
      case other => other.open(file)
    }
    // InputStream.readNBytes(length), which Java 8 lacks: up to `length` bytes, fewer where the file ends first.
    try {
      val bytes = new Array[Byte](length.toInt)
      val read = org.apache.commons.io.IOUtils.read(in, bytes)
      if (read == bytes.length) bytes else java.util.Arrays.copyOf(bytes, read)
    } finally in.close()
  }

  override def prettyName: String = "load_image"
  override protected def withNewChildInternal(newChild: Expression): LoadImage = copy(child = newChild)
}

object LoadImage {
  /** The longest file `load_image` reads: the largest array the JVM allocates. */
  val MaxFileBytes: Long = Int.MaxValue - 8
}

/**
 * `decode_image(bytes[, height, width[, channels]])`: PNG, JPEG, BMP or GIF bytes as an image tensor, like
 * [[LoadImage]]. Null bytes give null; undecodable bytes or an image over the decode limits are handled by
 * `onError`.
 */
case class DecodeImage(child: Expression, size: Option[(Int, Int)], channels: Option[Int], onError: OnImageError,
                       limits: DecodeLimits) extends UnaryExpression with ImageDecoding with CodegenFallback {

  override def checkInputDataTypes(): TypeCheckResult = child.dataType match {
    case BinaryType => TypeCheckResult.TypeCheckSuccess
    case other => TypeCheckResult.TypeCheckFailure(s"$prettyName expects a binary column, got ${other.simpleString}")
  }

  override protected def nullSafeEval(input: Any): Any =
    try decoded(input.asInstanceOf[Array[Byte]]) catch {
      case e: IllegalArgumentException => onError(prettyName, "image bytes", e)
    }

  override def prettyName: String = "decode_image"
  override protected def withNewChildInternal(newChild: Expression): DecodeImage = copy(child = newChild)
}

/**
 * `encode_image(tensor, format[, quality])`: a uint8 (or, for PNG, uint16) image tensor of shape (H, W) or
 * (H, W, C) as PNG or JPEG bytes. A null tensor gives null; a tensor that is no image is an error.
 */
case class EncodeImage(child: Expression, format: String, quality: Int) extends UnaryExpression with CodegenFallback {
  override def dataType: DataType = BinaryType
  override def checkInputDataTypes(): TypeCheckResult = TensorExpressions.checkTensor(prettyName, child.dataType)

  override protected def nullSafeEval(input: Any): Any = TensorExpressions.withContext(prettyName) {
    ImageCodec.encode(TensorUDT.read(input.asInstanceOf[InternalRow]), format, quality)
  }

  override def prettyName: String = "encode_image"
  override protected def withNewChildInternal(newChild: Expression): EncodeImage = copy(child = newChild)
}
