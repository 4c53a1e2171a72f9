package org.petastorm.spark.tensor

/**
 * Element type of a [[Tensor]], named the way numpy names it: `descr` is the array-protocol string stored with the
 * data (`<f4`, `|u1`, ...), `name` the dtype name (`float32`, `uint8`, ...). Tensor data is always little-endian.
 */
sealed abstract class DType(val name: String, val descr: String, val itemSize: Int) extends Serializable {
  /** True for the floating-point types (float16, float32, float64). */
  def isFloating: Boolean = descr.charAt(1) == 'f'
  /** Smallest and largest value of an integral type (unsigned 64-bit is capped at Long.MaxValue on the JVM). */
  def integralRange: (Long, Long) = DType.integralRanges.getOrElse(this,
    throw new IllegalStateException(s"$name is not an integral dtype"))
  override def toString: String = name
}

object DType {
  case object Bool extends DType("bool", "|b1", 1)
  case object Int8 extends DType("int8", "|i1", 1)
  case object UInt8 extends DType("uint8", "|u1", 1)
  case object Int16 extends DType("int16", "<i2", 2)
  case object UInt16 extends DType("uint16", "<u2", 2)
  case object Int32 extends DType("int32", "<i4", 4)
  case object UInt32 extends DType("uint32", "<u4", 4)
  case object Int64 extends DType("int64", "<i8", 8)
  case object UInt64 extends DType("uint64", "<u8", 8)
  case object Float16 extends DType("float16", "<f2", 2)
  case object Float32 extends DType("float32", "<f4", 4)
  case object Float64 extends DType("float64", "<f8", 8)

  val all: Seq[DType] = Seq(Bool, Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float16, Float32, Float64)

  private val integralRanges: Map[DType, (Long, Long)] = Map(
    Int8 -> (Byte.MinValue.toLong, Byte.MaxValue.toLong), UInt8 -> (0L, 255L),
    Int16 -> (Short.MinValue.toLong, Short.MaxValue.toLong), UInt16 -> (0L, 65535L),
    Int32 -> (Int.MinValue.toLong, Int.MaxValue.toLong), UInt32 -> (0L, 4294967295L),
    Int64 -> (Long.MinValue, Long.MaxValue), UInt64 -> (0L, Long.MaxValue))

  // Spellings accepted besides `descr` and `name`: numpy's short codes and native-order descrs, Spark type names.
  private val aliases: Map[String, DType] = Map(
    "?" -> Bool, "b1" -> Bool, "boolean" -> Bool,
    "i1" -> Int8, "byte" -> Int8, "tinyint" -> Int8, "u1" -> UInt8,
    "i2" -> Int16, "short" -> Int16, "smallint" -> Int16, "u2" -> UInt16,
    "i4" -> Int32, "int" -> Int32, "integer" -> Int32, "u4" -> UInt32,
    "i8" -> Int64, "long" -> Int64, "bigint" -> Int64, "u8" -> UInt64,
    "f2" -> Float16, "half" -> Float16, "f4" -> Float32, "float" -> Float32, "f8" -> Float64, "double" -> Float64)

  private val byName: Map[String, DType] =
    all.flatMap(d => Seq(d.name -> d, d.descr -> d)).toMap ++ aliases ++
      aliases.collect { case (k, d) if k.length == 2 && k.charAt(1).isDigit => ("=" + k) -> d }

  /** Parses a numpy descr (`<f4`, `|u1`), a dtype name (`float32`) or a Spark type name (`float`). */
  def apply(spec: String): DType = {
    val key = Option(spec).map(_.trim).getOrElse("")
    byName.getOrElse(key, byName.getOrElse(key.stripPrefix("<").stripPrefix("|"), {
      val hint = if (key.startsWith(">")) " (big-endian data is not supported: tensors are little-endian)" else ""
      throw new IllegalArgumentException(
        s"Unknown tensor dtype '$spec'$hint: expected one of ${all.map(_.name).mkString(", ")} " +
          s"or a numpy descr such as '<f4' or '|u1'")
    }))
  }
}
