package org.petastorm.spark.format

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets.UTF_8

import scala.jdk.CollectionConverters._

import net.razorvine.pickle.{IObjectConstructor, PickleException, Unpickler}
import org.apache.spark.sql.types._

/** A pickle that names a class outside the allow-list, or that does not hold a Unischema; nothing was run. */
class RefusedPickleException(message: String) extends IllegalArgumentException(message)

/**
 * The legacy `dataset-toolkit.unischema.v1` key: Petastorm's pickled Unischema. Reading accepts exactly the classes
 * that legitimate Petastorm pickles name (the same allow-list as the Python reader) and builds plain values from
 * them; writing produces a protocol-2 pickle with the original's class paths and object state.
 */
object LegacyPickle {
  private val ModuleRenames = Seq("av.experimental.deepdrive.dataset_toolkit." -> "petastorm.",
    "av.ml.dataset_toolkit." -> "petastorm.")

  private val NumpyDTypes = Map(
    "bool_" -> "bool", "int8" -> "int8", "int16" -> "int16", "int32" -> "int32", "int64" -> "int64",
    "uint8" -> "uint8", "uint16" -> "uint16", "uint32" -> "uint32", "uint64" -> "uint64", "float16" -> "float16",
    "float32" -> "float32", "float64" -> "float64", "str_" -> "string", "unicode_" -> "string", "bytes_" -> "bytes",
    "string_" -> "bytes", "datetime64" -> "datetime64", "timedelta64" -> "timedelta64")

  private val SparkTypes: Map[String, DataType] = Map(
    "IntegerType" -> IntegerType, "LongType" -> LongType, "ShortType" -> ShortType, "ByteType" -> ByteType,
    "FloatType" -> FloatType, "DoubleType" -> DoubleType, "StringType" -> StringType, "BinaryType" -> BinaryType,
    "BooleanType" -> BooleanType, "DateType" -> DateType, "TimestampType" -> TimestampType,
    "TimestampNTZType" -> TimestampNTZType, "NullType" -> NullType)

  /** An integer from 0 to Int.MaxValue, read exactly: a dimension of 2^32 + 3 is refused, never read as 3. */
  private def isDimension(n: Number): Boolean = n match {
    case _: java.lang.Integer | _: java.lang.Long | _: java.math.BigInteger =>
      val value = BigInt(n.toString)
      value >= 0 && value <= Int.MaxValue
    case _ => false
  }

  private val Codecs = Set("ScalarCodec", "NdarrayCodec", "CompressedNdarrayCodec", "CompressedImageCodec")

  private val Allowed: Set[String] =
    Set("petastorm.unischema.Unischema", "petastorm.unischema.UnischemaField", "collections.OrderedDict",
      "copy_reg._reconstructor", "copyreg._reconstructor", "__builtin__.object", "builtins.object",
      "__builtin__.tuple", "builtins.tuple", "pyspark.serializers._restore", "decimal.Decimal",
      "pyspark.sql.types.DecimalType") ++
      Codecs.map("petastorm.codecs." + _) ++ NumpyDTypes.keys.map("numpy." + _) ++
      SparkTypes.keys.map("pyspark.sql.types." + _)

  /** An instance of an allowed Python class: constructor arguments plus the `__dict__` set by BUILD. */
  final class PyObject(val cls: String, val args: Seq[AnyRef]) {
    var state: Map[String, AnyRef] = Map.empty
    def __setstate__(s: java.util.HashMap[AnyRef, AnyRef]): Unit =
      state = s.asScala.map { case (k, v) => k.toString -> v }.toMap
  }

  /** An allowed class or function named by GLOBAL; calling it only builds values. */
  final class PyClass(val name: String) extends IObjectConstructor {
    override def construct(args: Array[AnyRef]): AnyRef = name match {
      case "collections.OrderedDict" =>
        val map = new java.util.LinkedHashMap[AnyRef, AnyRef]()
        args.headOption.collect { case items: java.util.List[_] => items.asScala }.getOrElse(Nil).foreach {
          case Array(k: AnyRef, v: AnyRef) => map.put(k, v)
          case pair: java.util.List[_] => map.put(pair.get(0).asInstanceOf[AnyRef], pair.get(1).asInstanceOf[AnyRef])
          case other => throw new RefusedPickleException(s"OrderedDict item $other is not a pair")
        }
        map
      case "copy_reg._reconstructor" | "copyreg._reconstructor" => args match {
        case Array(cls: PyClass, base: PyClass, state) if base.name.endsWith(".tuple") =>
          cls.construct(state.asInstanceOf[Array[AnyRef]])
        case Array(cls: PyClass, _: PyClass, _) => cls.construct(Array.empty)
        case _ => throw new RefusedPickleException("copy_reg._reconstructor with unexpected arguments")
      }
      case "pyspark.serializers._restore" => args match {
        case Array(_, _, values: Array[AnyRef]) => new PyObject("petastorm.unischema.UnischemaField", values.toSeq)
        case _ => throw new RefusedPickleException("pyspark.serializers._restore with unexpected arguments")
      }
      case "decimal.Decimal" => new java.math.BigDecimal(args.head.toString)
      case _ if name.startsWith("numpy.") =>
        throw new RefusedPickleException(s"$name values are not expected in a Unischema pickle")
      case _ => new PyObject(name, args.toSeq)
    }
  }

  private final class AllowListUnpickler extends Unpickler {
    private def resolve(module: String, name: String): PyClass = {
      val renamed = ModuleRenames.collectFirst { case (p, r) if module.startsWith(p) => r + module.drop(p.length) }
        .getOrElse(module)
      val qualified = s"$renamed.$name"
      if (!Allowed.contains(qualified)) {
        throw new RefusedPickleException(s"Refused to load $module.$name from a pickle: it is not a class that " +
          "Petastorm metadata contains (nothing was executed)")
      }
      new PyClass(qualified)
    }

    private def readLine(): String = {
      val out = new ByteArrayOutputStream()
      var b = input.read()
      while (b != -1 && b != '\n') { out.write(b); b = input.read() }
      new String(out.toByteArray, UTF_8).stripSuffix("\r")
    }

    override protected def dispatch(key: Short): AnyRef = key match {
      case 'c' => // GLOBAL
        val module = readLine(); val name = readLine()
        stack.add(resolve(module, name)); Unpickler.NO_RETURN_VALUE
      case 0x93 => // STACK_GLOBAL
        val name = stack.pop().toString; val module = stack.pop().toString
        stack.add(resolve(module, name)); Unpickler.NO_RETURN_VALUE
      case 'i' => // INST
        val cls = resolve(readLine(), readLine())
        stack.add(cls.construct(stack.pop_all_since_marker().toArray)); Unpickler.NO_RETURN_VALUE
      case 'o' => // OBJ
        stack.pop_all_since_marker().asScala.toList match {
          case (cls: PyClass) :: args => stack.add(cls.construct(args.toArray.asInstanceOf[Array[AnyRef]]))
          case _ => throw new RefusedPickleException("OBJ on something that is not an allowed class")
        }
        Unpickler.NO_RETURN_VALUE
      case 0x82 | 0x83 | 0x84 | 'P' | 'Q' => // EXT1, EXT2, EXT4, PERSID, BINPERSID
        throw new RefusedPickleException(s"Refused pickle opcode 0x${(key & 0xff).toHexString}")
      case 'B' | 'T' | 'X' | 0x8b => // BINBYTES, BINSTRING, BINUNICODE, LONG4: a 4-byte length, allocated first
        checkLength(4); super.dispatch(key)
      case 0x8e | 0x8d | 0x96 | 0x95 => // BINBYTES8, BINUNICODE8, BYTEARRAY8, FRAME: an 8-byte length
        checkLength(8); super.dispatch(key)
      case 's' => // SETITEM: the key is hashed by a java.util.HashMap
        val value = stack.pop(); val k = stack.pop(); checkKey(k); stack.add(k); stack.add(value); super.dispatch(key)
      case 'u' | 'd' | 0x90 | 0x91 => // SETITEMS, DICT: keys at even places; ADDITEMS, FROZENSET: set elements
        val items = stack.pop_all_since_marker().asScala.toSeq
        items.zipWithIndex.foreach { case (item, i) => if (i % 2 == 0 || key == 0x90 || key == 0x91) checkKey(item) }
        stack.add_mark(); items.foreach(stack.add); super.dispatch(key)
      case _ => super.dispatch(key)
    }

    /** The unpickler allocates what a length prefix states before reading it: no object is larger than what is
     * left of the pickle, so a larger length is refused before anything is allocated. */
    private def checkLength(width: Int): Unit = {
      input.mark(width)
      val bytes = new Array[Byte](width)
      val read = input.read(bytes)
      input.reset()
      val length = bytes.take(read max 0).zipWithIndex.map { case (b, i) => BigInt(b & 0xff) << (8 * i) }.sum
      val left = input.available() - width
      if (read < width || length > left) {
        throw new RefusedPickleException(s"A pickle opcode claims $length bytes; the pickle has $left left")
      }
    }

    /** Dict keys and set elements are hashed: Petastorm metadata only has strings, numbers and booleans there (a
     * list key would be hashed element by element: a DAG of lists takes exponential time). */
    private def checkKey(k: AnyRef): Unit = k match {
      case null | _: String | _: Number | _: java.lang.Boolean =>
      case other => throw new RefusedPickleException(
        s"Refused a dict key or set element of type ${other.getClass.getSimpleName} (metadata keys are strings)")
    }
  }

  /** Reads a pickled Unischema under the allow-list. */
  def readUnischema(bytes: Array[Byte]): Unischema = {
    val root = try new AllowListUnpickler().loads(bytes) catch {
      case e: RefusedPickleException => throw e
      case e: PickleException => throw new RefusedPickleException(s"Unreadable Unischema pickle: ${e.getMessage}")
    }
    root match {
      case o: PyObject if o.cls == "petastorm.unischema.Unischema" =>
        val fields = o.state.get("_fields") match {
          case Some(m: java.util.Map[_, _]) => m.values().asScala.toSeq.map(toField)
          case _ => throw new RefusedPickleException("The pickled Unischema has no _fields")
        }
        Unischema(o.state.get("_name").map(_.toString).getOrElse(""), fields)
      case other => throw new RefusedPickleException(
        s"The pickle holds ${Option(other).map(_.getClass.getSimpleName).orNull}, expected a Unischema")
    }
  }

  private def toField(value: Any): UnischemaField = value match {
    case f: PyObject if f.cls == "petastorm.unischema.UnischemaField" && f.args.length >= 4 =>
      val name = f.args.head.toString
      val dtype = f.args(1) match {
        case c: PyClass if c.name == "decimal.Decimal" => "decimal"
        case c: PyClass if c.name.startsWith("numpy.") => NumpyDTypes(c.name.stripPrefix("numpy."))
        case other => throw new RefusedPickleException(s"Field '$name': unsupported numpy_dtype $other")
      }
      val shape = f.args(2) match {
        case dims: Array[AnyRef] => dims.toSeq.map {
          case null => None
          case n: Number if isDimension(n) => Some(n.intValue())
          case other => throw new RefusedPickleException(s"Field '$name': bad shape dimension $other")
        }
        case other => throw new RefusedPickleException(s"Field '$name': shape $other is not a tuple")
      }
      val nullable = f.args.lift(4).exists(_ == java.lang.Boolean.TRUE)
      UnischemaField(name, dtype, shape, Option(f.args(3)).map(c => toCodec(name, c)), nullable)
    case other => throw new RefusedPickleException(s"Expected a UnischemaField, got $other")
  }

  private def toCodec(field: String, value: Any): FieldCodec = value match {
    case c: PyObject => c.cls.stripPrefix("petastorm.codecs.") match {
      case "NdarrayCodec" => FieldCodec.Ndarray
      case "CompressedNdarrayCodec" => FieldCodec.CompressedNdarray
      case "CompressedImageCodec" =>
        val format = c.state.get("_image_codec").map(_.toString.stripPrefix(".")).getOrElse("png")
        FieldCodec.Image(if (format == "jpg") "jpeg" else format,
          c.state.get("_quality").collect { case n: Number => n.intValue() }.getOrElse(80))
      case "ScalarCodec" => FieldCodec.Scalar(c.state.get("_spark_type") match {
        case Some(t: PyObject) => toSparkType(field, t)
        case other => throw new RefusedPickleException(s"Field '$field': ScalarCodec without a Spark type ($other)")
      })
      case other => throw new RefusedPickleException(s"Field '$field': unknown codec $other")
    }
    case other => throw new RefusedPickleException(s"Field '$field': codec $other is not a codec")
  }

  private def toSparkType(field: String, t: PyObject): DataType = t.cls.stripPrefix("pyspark.sql.types.") match {
    case "DecimalType" =>
      def int(key: String, default: Int) = t.state.get(key).collect { case n: Number => n.intValue() }.getOrElse(default)
      DecimalType(int("precision", 10), int("scale", 0))
    case name => SparkTypes.getOrElse(name, throw new RefusedPickleException(s"Field '$field': Spark type $name"))
  }

  /**
   * A protocol-0 pickle of the schema, the form Petastorm 0.4-0.7 wrote, which 0.13.1 and this project's Python
   * reader load. Protocol 0 is plain ASCII, so it survives Parquet's UTF-8 key/value metadata unchanged.
   */
  def writeUnischema(schema: Unischema): Array[Byte] = new PickleWriter().unischema(schema)

  private final class PickleWriter {
    private val out = new StringBuilder

    def unischema(schema: Unischema): Array[Byte] = {
      reconstructed("petastorm.unischema", "Unischema")
      out ++= "(d"
      str("_name"); str(schema.name); out += 's'
      str("_fields"); global("collections", "OrderedDict"); out ++= "((l"
      schema.fields.foreach { f => out ++= "(l"; str(f.name); out += 'a'; field(f); out ++= "aa" }
      out ++= "tR"; out += 's'
      schema.fields.foreach { f => str(f.name); field(f); out += 's' }
      out ++= "b."
      out.toString.getBytes(UTF_8)
    }

    private def field(f: UnischemaField): Unit = {
      global("copy_reg", "_reconstructor"); out += '('
      global("petastorm.unischema", "UnischemaField"); global("__builtin__", "tuple")
      out += '('
      str(f.name)
      f.dtype match {
        case "decimal" => global("decimal", "Decimal")
        case "string" => global("numpy", "str_")
        case "bytes" => global("numpy", "bytes_")
        case "bool" => global("numpy", "bool_")
        case other => global("numpy", other)
      }
      out += '('; f.shape.foreach(d => d.fold[Unit](out += 'N')(int)); out += 't'
      f.codec.fold[Unit](out += 'N')(codec)
      out ++= (if (f.nullable) "I01\n" else "I00\n")
      out ++= "ttR"
    }

    private def codec(c: FieldCodec): Unit = c match {
      case FieldCodec.Ndarray => reconstructed("petastorm.codecs", "NdarrayCodec")
      case FieldCodec.CompressedNdarray => reconstructed("petastorm.codecs", "CompressedNdarrayCodec")
      case FieldCodec.Image(format, quality) =>
        reconstructed("petastorm.codecs", "CompressedImageCodec")
        out ++= "(d"; str("_image_codec"); str("." + format); out += 's'; str("_quality"); int(quality); out ++= "sb"
      case FieldCodec.Scalar(t) =>
        reconstructed("petastorm.codecs", "ScalarCodec")
        out ++= "(d"; str("_spark_type"); sparkType(t); out ++= "sb"
    }

    private def sparkType(t: DataType): Unit = t match {
      case d: DecimalType =>
        reconstructed("pyspark.sql.types", "DecimalType")
        out ++= "(d"; str("precision"); int(d.precision); out += 's'; str("scale"); int(d.scale); out += 's'
        str("hasPrecisionInfo"); out ++= "I01\nsb"
      case other =>
        val name = SparkTypes.collectFirst { case (n, st) if st == other => n }.getOrElse(
          throw new IllegalArgumentException(s"Spark type ${other.simpleString} has no legacy pickle form"))
        reconstructed("pyspark.sql.types", name)
    }

    /** `copy_reg._reconstructor(cls, object, None)`: an instance whose state a following BUILD sets. */
    private def reconstructed(module: String, name: String): Unit = {
      global("copy_reg", "_reconstructor"); out += '('; global(module, name); global("__builtin__", "object")
      out ++= "NtR"
    }

    private def global(module: String, name: String): Unit = out ++= s"c$module\n$name\n"
    private def int(v: Int): Unit = out ++= s"I$v\n"
    /** UNICODE opcode: raw-unicode-escape, so anything outside printable ASCII becomes \\uXXXX. */
    private def str(s: String): Unit = {
      out += 'V'
      s.foreach { ch =>
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') out += ch else out ++= f"\\u${ch.toInt}%04x"
      }
      out += '\n'
    }
  }
}
