package org.petastorm.spark

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.FunctionIdentifier
import org.apache.spark.sql.catalyst.expressions.{Expression, ExpressionInfo, Literal}
import org.apache.spark.sql.internal.SQLConf
import org.apache.spark.sql.types._
import org.petastorm.spark.codec.DecodeLimits
import org.petastorm.spark.image._
import org.petastorm.spark.tensor._

/** The SQL functions petastorm adds: name, documentation and how each builds its expression from arguments. */
private[spark] object SqlFunctions {
  type Builder = Seq[Expression] => Expression

  private def function(name: String, className: String, usage: String, arities: Set[Int])(build: Builder) = {
    val checked: Builder = args => {
      if (!arities.contains(args.length)) {
        throw new IllegalArgumentException(
          s"$name takes ${arities.toSeq.sorted.mkString(" or ")} arguments ($usage), got ${args.length}")
      }
      build(args)
    }
    (FunctionIdentifier(name), new ExpressionInfo(className, null, name, usage, "", "", "", "", "", "", "built-in"), checked)
  }

  /** A constant string argument such as a dtype, evaluated when the query is analysed. */
  private def constantString(function: String, what: String, e: Expression): String = {
    if (!e.foldable) throw new IllegalArgumentException(s"$function: the $what must be a constant string")
    Option(e.eval()).map(_.toString).getOrElse(
      throw new IllegalArgumentException(s"$function: the $what must not be null"))
  }

  private def dtypeArg(function: String, e: Expression): DType =
    TensorExpressions.withContext(function)(DType(constantString(function, "dtype", e)))

  /** A constant integer argument; None for NULL. */
  private def constantInt(function: String, what: String, e: Expression): Option[Int] = {
    if (!e.foldable) throw new IllegalArgumentException(s"$function: the $what must be a constant integer")
    e.dataType match {
      case ByteType | ShortType | IntegerType | LongType | NullType =>
      case other =>
        throw new IllegalArgumentException(s"$function: the $what must be an integer, got ${other.simpleString}")
    }
    Option(e.eval()).map { v =>
      val n = v.asInstanceOf[Number].longValue()
      if (n < Int.MinValue || n > Int.MaxValue) {
        throw new IllegalArgumentException(s"$function: the $what $n is too large")
      }
      n.toInt
    }
  }

  /** The `height, width[, channels]` arguments after the first of load_image and decode_image. */
  private def imageArgs(function: String, args: Seq[Expression]): (Option[(Int, Int)], Option[Int]) = {
    val height = args.lift(1).flatMap(constantInt(function, "height", _))
    val width = args.lift(2).flatMap(constantInt(function, "width", _))
    val channels = args.lift(3).flatMap(constantInt(function, "channels", _))
    if (height.isDefined != width.isDefined) {
      throw new IllegalArgumentException(s"$function: give both height and width (to resize) or neither")
    }
    val size = for (h <- height; w <- width) yield (h, w)
    size.foreach { case (h, w) =>
      if (h <= 0 || w <= 0) throw new IllegalArgumentException(s"$function: cannot resize to $h x $w pixels")
    }
    channels.foreach { c =>
      if (c != 1 && c != 3 && c != 4) {
        throw new IllegalArgumentException(s"$function: channels must be 1, 3 or 4, got $c")
      }
    }
    (size, channels)
  }

  /** The decode limits the session's confs set, read when the query is analysed. */
  private def decodeLimits(function: String): DecodeLimits = TensorExpressions.withContext(function)(
    DecodeLimits.fromConf(key => Option(SQLConf.get.getConfString(key, null))))

  private def imageFormat(e: Expression): String = constantString("encode_image", "format", e).trim.toLowerCase match {
    case "png" => "png"
    case "jpeg" | "jpg" => "jpeg"
    case other => throw new IllegalArgumentException(s"encode_image: the format must be 'png' or 'jpeg', got '$other'")
  }

  private def jpegQuality(e: Expression): Int = constantInt("encode_image", "quality", e) match {
    case Some(q) if q >= 1 && q <= 100 => q
    case other => throw new IllegalArgumentException(
      s"encode_image: the quality must be 1 to 100, got ${other.map(_.toString).getOrElse("NULL")}")
  }

  val all: Seq[(FunctionIdentifier, ExpressionInfo, Builder)] = Seq(
    function("tensor_shape", classOf[TensorShape].getName, "tensor_shape(tensor) - the dimensions as array<int>",
      Set(1))(args => TensorShape(args.head)),
    function("tensor_dtype", classOf[TensorDTypeName].getName, "tensor_dtype(tensor) - the numpy dtype name",
      Set(1))(args => TensorDTypeName(args.head)),
    function("tensor_to_array", classOf[TensorToArray].getName,
      "tensor_to_array(tensor[, dtype]) - the elements in row-major order, as double unless a dtype is given",
      Set(1, 2))(args => TensorToArray(args.head, args.lift(1).map(dtypeArg("tensor_to_array", _)).getOrElse(DType.Float64))),
    function("tensor_reshape", classOf[TensorReshape].getName,
      "tensor_reshape(tensor, shape) - the same elements with another shape; one dimension may be -1",
      Set(2))(args => TensorReshape(args(0), args(1))),
    function("array_to_tensor", classOf[ArrayToTensor].getName,
      "array_to_tensor(array, shape[, dtype]) - a tensor from a flat array in row-major order",
      Set(2, 3))(args => ArrayToTensor(args(0), args(1), args.lift(2).map(dtypeArg("array_to_tensor", _)))),
    function("vector_to_tensor", classOf[VectorToTensor].getName,
      "vector_to_tensor(vector[, shape]) - a Spark ML vector (dense or sparse) as a float64 tensor, of shape (size) " +
        "by default", Set(1, 2))(args => VectorToTensor(args(0),
      args.lift(1).getOrElse(Literal.create(Seq(-1), ArrayType(IntegerType, containsNull = false))))),
    function("load_image", classOf[LoadImage].getName,
      "load_image(path[, height, width[, channels]]) - the image file at path (PNG, JPEG, BMP, GIF) as a uint8 " +
        "tensor (H, W, C) in RGB order, optionally resized (bilinear) and converted to 1, 3 or 4 channels",
      Set(1, 3, 4)) { args =>
      val (size, channels) = imageArgs("load_image", args)
      LoadImage(args.head, size, channels, OnImageError.current("load_image"), decodeLimits("load_image"),
        SessionHadoopConf.current())
    },
    function("decode_image", classOf[DecodeImage].getName,
      "decode_image(bytes[, height, width[, channels]]) - PNG, JPEG, BMP or GIF bytes as a uint8 tensor (H, W, C) " +
        "in RGB order, optionally resized (bilinear) and converted to 1, 3 or 4 channels",
      Set(1, 3, 4)) { args =>
      val (size, channels) = imageArgs("decode_image", args)
      DecodeImage(args.head, size, channels, OnImageError.current("decode_image"), decodeLimits("decode_image"))
    },
    function("encode_image", classOf[EncodeImage].getName,
      "encode_image(tensor, format[, quality]) - an image tensor as 'png' or 'jpeg' bytes (JPEG quality 1-100, " +
        "default 80)", Set(2, 3)) { args =>
      EncodeImage(args(0), imageFormat(args(1)), args.lift(2).map(jpegQuality).getOrElse(80))
    },
    // Built on the driver when the query is analysed, where the accumulator's value lives: a Literal of that value.
    function("image_failure_count", ImageFailures.getClass.getName.stripSuffix("$"),
      "image_failure_count() - how many images load_image and decode_image turned into null so far in this " +
        "SparkContext, read when the query is analysed", Set(0)) { _ =>
      Literal(ImageFailures.count(SparkSession.active))
    }
  )
}
