package org.petastorm.spark.format

import java.nio.charset.StandardCharsets.UTF_8
import java.util.IdentityHashMap

import org.apache.spark.sql.types._

/** A pickle that names a class outside the allow-list, or that does not hold a Unischema; nothing was run. */
class RefusedPickleException(message: String) extends IllegalArgumentException(message)

/**
 * The legacy `dataset-toolkit.unischema.v1` key: Petastorm's pickled Unischema. Reading takes the pickle as data
 * ([[PickleReader]]), accepts exactly the classes that legitimate Petastorm pickles name (the same allow-list as the
 * Python reader) and builds the schema from the forms they use; writing produces a protocol-0 pickle with the
 * original's class paths and object state.
 */
object LegacyPickle {
  import PickleValue._

  private val ModuleRenames = Seq("av.experimental.deepdrive.dataset_toolkit." -> "petastorm.",
    "av.ml.dataset_toolkit." -> "petastorm.")

  /** Python 2's module names, read as Python 3's (as Python 3's unpickler does). */
  private val Python2Modules = Map("copy_reg" -> "copyreg", "__builtin__" -> "builtins")

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

  private val Codecs = Set("ScalarCodec", "NdarrayCodec", "CompressedNdarrayCodec", "CompressedImageCodec")

  private val CodecsModule = "petastorm.codecs."
  private val SparkTypesModule = "pyspark.sql.types."
  private val UnischemaClass = "petastorm.unischema.Unischema"
  private val FieldClass = "petastorm.unischema.UnischemaField"

  /** The classes whose objects a Unischema pickle holds, as constructor arguments and state. */
  private val ObjectClasses: Set[String] = Set(UnischemaClass, FieldClass, SparkTypesModule + "DecimalType") ++
    Codecs.map(CodecsModule + _) ++ SparkTypes.keys.map(SparkTypesModule + _)

  private val Allowed: Set[String] = ObjectClasses ++ Set("collections.OrderedDict", "copyreg._reconstructor",
    "builtins.object", "builtins.tuple", "pyspark.serializers._restore", "decimal.Decimal") ++
    NumpyDTypes.keys.map("numpy." + _)

  /** numpy's limit on an array's dimensions (32 before numpy 2). */
  private val MaxDimensions = 64

  private val Reconstructor = Global("copyreg", "_reconstructor")
  private val Restore = Global("pyspark.serializers", "_restore")
  private val OrderedDict = Global("collections", "OrderedDict")

  /** A name the pickle gives, under its current module path; one outside the allow-list is refused. */
  private def resolve(global: Global): Global = {
    val module = ModuleRenames.collectFirst { case (old, now) if global.module.startsWith(old) =>
      now + global.module.drop(old.length)
    }.getOrElse(Python2Modules.getOrElse(global.module, global.module))
    if (!Allowed.contains(s"$module.${global.name}")) {
      throw new RefusedPickleException(s"Refused to load ${global.module}.${global.name} from a pickle: it is not " +
        "a class that Petastorm metadata contains (nothing was executed)")
    }
    Global(module, global.name)
  }

  /** Reads a pickled Unischema under the allow-list. */
  def readUnischema(bytes: Array[Byte]): Unischema = new UnischemaReader().unischema(PickleReader.read(bytes, resolve))

  /** An object of an allowed class, as a legitimate pickle builds it: constructor arguments and `__dict__`. */
  private final case class PyObject(cls: String, args: IndexedSeq[PickleValue], state: Map[String, PickleValue])

  /**
   * Interprets one pickle's tree. A state dict may be shared by many objects, so each is turned into a map once:
   * the work stays linear in the pickle's size.
   */
  private final class UnischemaReader {
    private val states = new IdentityHashMap[PickleValue, Map[String, PickleValue]]()

    def unischema(root: PickleValue): Unischema = pyObject(root) match {
      case Some(PyObject(UnischemaClass, _, state)) =>
        val name = state.get("_name") match {
          case Some(PyStr(s)) => s
          case None => ""
          case Some(other) => throw new RefusedPickleException(s"The Unischema's _name is a ${other.typeName}")
        }
        val fields = fieldValues(state.getOrElse("_fields",
          throw new RefusedPickleException("The pickled Unischema has no _fields"))).map(field)
        fields.groupBy(_.name).find(_._2.size > 1).foreach { case (n, same) =>
          throw new RefusedPickleException(s"The pickled Unischema has the field '$n' ${same.size} times")
        }
        Unischema(name, fields)
      case other => throw new RefusedPickleException(
        s"The pickle holds ${other.fold(root.typeName)(_.cls)}, expected a Unischema")
    }

    /** The forms legitimate pickles give objects; a numpy or Decimal value is refused, anything else is None. */
    private def pyObject(value: PickleValue): Option[PyObject] = value match {
      // Protocols 0 and 1: copy_reg._reconstructor(cls, object, None), its state set by BUILD ...
      case Call(Reconstructor, Seq(cls: Global, Global("builtins", "object"), PyNone), Seq(), state, Seq(), Seq()) =>
        Some(PyObject(cls.typeName, Vector.empty, stateOf(cls, state)))
      // ... and copy_reg._reconstructor(UnischemaField, tuple, values) for a namedtuple.
      case Call(Reconstructor, Seq(cls: Global, Global("builtins", "tuple"), PyTuple(values)), Seq(), None,
          Seq(), Seq()) =>
        Some(PyObject(cls.typeName, values, Map.empty))
      // Petastorm 0.4-0.7: the namedtuple as pyspark pickled it.
      case Call(Restore, Seq(PyStr("UnischemaField"), _: PyTuple, PyTuple(values)), Seq(), None, Seq(), Seq()) =>
        Some(PyObject(FieldClass, values, Map.empty))
      // Protocol 2 and later: NEWOBJ (or REDUCE) of the class, its state set by BUILD.
      case Call(cls: Global, args, Seq(), state, Seq(), Seq()) if ObjectClasses.contains(cls.typeName) =>
        Some(PyObject(cls.typeName, args, stateOf(cls, state)))
      case Call(cls: Global, _, _, _, _, _) if cls.module == "numpy" || cls.module == "decimal" =>
        throw new RefusedPickleException(s"${cls.typeName} values are not expected in a Unischema pickle")
      case _ => None
    }

    private def stateOf(cls: Global, state: Option[PickleValue]): Map[String, PickleValue] = state match {
      case None | Some(PyNone) => Map.empty
      case Some(dict: PyDict) => Option(states.get(dict)).getOrElse {
        val map = dict.entries.collect { case (PyStr(key), value) => key -> value }.toMap
        states.put(dict, map)
        map
      }
      case Some(other) => throw new RefusedPickleException(s"The state of ${cls.typeName} is a ${other.typeName}")
    }

    /** `_fields`: an OrderedDict, from a list of pairs (Python 2) or from SETITEMS (Python 3), in pickled order. */
    private def fieldValues(fields: PickleValue): Seq[PickleValue] = fields match {
      case Call(OrderedDict, args, Seq(), _, Seq(), entries) if args.size <= 1 =>
        args.flatMap(pairs).map(pairValue) ++ entries.map(_._2)
      case PyDict(entries) => entries.map(_._2)
      case other => throw new RefusedPickleException(s"The Unischema's _fields is a ${other.typeName}")
    }

    private def pairs(items: PickleValue): Seq[PickleValue] = items match {
      case PyList(pairs) => pairs
      case PyTuple(pairs) => pairs
      case other => throw new RefusedPickleException(s"OrderedDict of a ${other.typeName}, not of pairs")
    }

    private def pairValue(pair: PickleValue): PickleValue = pair match {
      case PyList(Seq(_, value)) => value
      case PyTuple(Seq(_, value)) => value
      case other => throw new RefusedPickleException(s"OrderedDict item ${other.typeName} is not a pair")
    }

    private def field(value: PickleValue): UnischemaField = pyObject(value) match {
      case Some(PyObject(FieldClass, args, _)) if args.length >= 4 =>
        val name = args.head match {
          case PyStr(s) => s
          case other => throw new RefusedPickleException(s"A field's name is a ${other.typeName}")
        }
        UnischemaField(name, dtype(name, args(1)), shape(name, args(2)),
          Some(args(3)).filter(_ != PyNone).map(codec(name, _)), args.lift(4).contains(PyBool(true)))
      case other => throw new RefusedPickleException(
        s"Expected a UnischemaField, got ${other.fold(value.typeName)(_.cls)}")
    }

    private def dtype(field: String, value: PickleValue): String = value match {
      case Global("decimal", "Decimal") => "decimal"
      case Global("numpy", name) => NumpyDTypes(name)
      case other => throw new RefusedPickleException(s"Field '$field': unsupported numpy_dtype ${other.typeName}")
    }

    /** Dimensions from 0 to Int.MaxValue, read exactly: 2^32 + 3 is refused, never read as 3. */
    private def shape(field: String, value: PickleValue): Seq[Option[Int]] = value match {
      case PyTuple(dims) if dims.size <= MaxDimensions => dims.map {
        case PyNone => None
        case PyInt(n) if n >= 0 && n.isValidInt => Some(n.toInt)
        case PyInt(n) => throw new RefusedPickleException(s"Field '$field': bad shape dimension " +
          (if (n.isValidLong) n.toString else s"of ${n.bitLength} bits"))
        case other => throw new RefusedPickleException(s"Field '$field': bad shape dimension ${other.typeName}")
      }
      case PyTuple(dims) => throw new RefusedPickleException(
        s"Field '$field': a shape of ${dims.size} dimensions (numpy has at most $MaxDimensions)")
      case other => throw new RefusedPickleException(s"Field '$field': shape ${other.typeName} is not a tuple")
    }

    private def codec(field: String, value: PickleValue): FieldCodec = pyObject(value) match {
      case Some(PyObject(cls, _, state)) if cls.startsWith(CodecsModule) => cls.stripPrefix(CodecsModule) match {
        case "NdarrayCodec" => FieldCodec.Ndarray
        case "CompressedNdarrayCodec" => FieldCodec.CompressedNdarray
        case "CompressedImageCodec" =>
          val format = state.get("_image_codec").collect { case PyStr(s) => s.stripPrefix(".") }.getOrElse("png")
          FieldCodec.Image(if (format == "jpg") "jpeg" else format, int(state, "_quality").getOrElse(80))
        case "ScalarCodec" => FieldCodec.Scalar(state.get("_spark_type").flatMap(pyObject) match {
          case Some(t) if t.cls.startsWith(SparkTypesModule) => sparkType(t)
          case _ => throw new RefusedPickleException(s"Field '$field': ScalarCodec without a Spark type")
        })
      }
      case other => throw new RefusedPickleException(
        s"Field '$field': ${other.fold(value.typeName)(_.cls)} is not a codec")
    }

    private def sparkType(t: PyObject): DataType = t.cls.stripPrefix(SparkTypesModule) match {
      case "DecimalType" => DecimalType(int(t.state, "precision").getOrElse(10), int(t.state, "scale").getOrElse(0))
      case name => SparkTypes(name)
    }

    private def int(state: Map[String, PickleValue], key: String): Option[Int] =
      state.get(key).collect { case PyInt(n) if n.isValidInt => n.toInt }
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
