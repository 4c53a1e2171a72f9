package org.petastorm.spark.format

import java.io.File
import java.nio.charset.StandardCharsets.{ISO_8859_1, UTF_8}

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.spark.sql.types._
import org.scalatest.funsuite.AnyFunSuite

/** LegacyPickle: the pickled Unischema of the `dataset-toolkit.unischema.v1` key, read under the allow-list and written. */
class LegacyPickleSuite extends AnyFunSuite {
  private val fixtures = new File("tests/data/petastorm-0.13.1")

  /** The pickle that Petastorm 0.13.1 stored in a fixture dataset's `_common_metadata`. */
  private def fixturePickle(dataset: String): Array[Byte] =
    DatasetMetadata.read(new Configuration(), new Path(new File(fixtures, dataset).getAbsolutePath))(
      DatasetMetadata.UnischemaPickleKey)

  private def refusal(pickle: String): String =
    intercept[RefusedPickleException](LegacyPickle.readUnischema(pickle.getBytes(ISO_8859_1))).getMessage

  private val scalar = (t: DataType) => Some(FieldCodec.Scalar(t))

  /** The schema read from a fixture's pickle, its fields in name order (field order is not what is checked here). */
  private def fixtureSchema(dataset: String): Unischema = {
    val schema = LegacyPickle.readUnischema(fixturePickle(dataset))
    schema.copy(fields = schema.fields.sortBy(_.name))
  }

  test("the pickles Petastorm 0.13.1 wrote read as the schemas it was given") {
    assert(fixtureSchema("hello_world") == Unischema("HelloWorldSchema", Seq(
      UnischemaField("array_4d", "uint8", Seq(None, Some(128), Some(30), None), Some(FieldCodec.Ndarray), false),
      UnischemaField("id", "int32", Nil, scalar(IntegerType), nullable = false),
      UnischemaField("image1", "uint8", Seq(Some(128), Some(256), Some(3)), Some(FieldCodec.Image("png", 80)), false))))
    assert(fixtureSchema("codecs") == Unischema("CodecSchema", Seq(
      UnischemaField("gray_png", "uint8", Seq(Some(20), Some(30)), Some(FieldCodec.Image("png", 80)), false),
      UnischemaField("id", "int64", Nil, scalar(LongType), nullable = false),
      UnischemaField("jpeg", "uint8", Seq(Some(32), Some(48), Some(3)), Some(FieldCodec.Image("jpeg", 90)), false),
      UnischemaField("label", "int32", Nil, scalar(IntegerType), nullable = false),
      UnischemaField("name", "string", Nil, scalar(StringType), nullable = false),
      UnischemaField("packed", "float64", Seq(Some(5), Some(7)), Some(FieldCodec.CompressedNdarray), false),
      UnischemaField("ragged", "float32", Seq(None, Some(3)), Some(FieldCodec.Ndarray), nullable = true))))
  }

  test("the reference's test schema: fields without a codec, decimals, ShortType, string and bytes matrices") {
    val schema = fixtureSchema("test_schema")
    assert(schema.name == "TestSchema" && schema.fields.length == 17)
    def field(name: String) = schema.field(name).getOrElse(fail(s"no field $name"))
    assert(field("partition_key") == UnischemaField("partition_key", "string", Nil, None, nullable = false))
    assert(field("id_odd") == UnischemaField("id_odd", "bool", Nil, None, nullable = false))
    assert(field("id2") == UnischemaField("id2", "int32", Nil, scalar(ShortType), nullable = false))
    assert(field("decimal") == UnischemaField("decimal", "decimal", Nil, scalar(DecimalType(10, 9)), nullable = false))
    assert(field("matrix_string") ==
      UnischemaField("matrix_string", "bytes", Seq(None, None), Some(FieldCodec.Ndarray), nullable = false))
    assert(field("sensor_name") == UnischemaField("sensor_name", "string", Seq(Some(1)), Some(FieldCodec.Ndarray), false))
    assert(field("matrix_nullable").nullable && field("integer_nullable").nullable)
  }

  test("writeUnischema writes an ASCII protocol-0 pickle that reads back as the same schema") {
    val schema = Unischema("Größe \\ schema", Seq(
      UnischemaField("id", "int64", Nil, scalar(LongType), nullable = false),
      UnischemaField("price", "decimal", Nil, scalar(DecimalType(12, 3)), nullable = true),
      UnischemaField("when", "datetime64", Nil, scalar(TimestampType), nullable = false),
      UnischemaField("flag", "bool", Nil, scalar(BooleanType), nullable = false),
      UnischemaField("tags", "string", Seq(None), None, nullable = true),
      UnischemaField("blob", "bytes", Nil, scalar(BinaryType), nullable = false),
      UnischemaField("image", "uint8", Seq(Some(4), Some(5), Some(3)), Some(FieldCodec.Image("jpeg", 95)), false),
      UnischemaField("mask", "uint16", Seq(Some(4), Some(5)), Some(FieldCodec.Image("png", 80)), false),
      UnischemaField("matrix", "float32", Seq(None, Some(8)), Some(FieldCodec.Ndarray), nullable = true),
      UnischemaField("packed", "float64", Seq(Some(2)), Some(FieldCodec.CompressedNdarray), nullable = false)))
    val pickle = LegacyPickle.writeUnischema(schema)
    assert(pickle.forall(b => b >= 0 && b < 0x80), "protocol 0 is ASCII")
    val text = new String(pickle, UTF_8)
    assert(text.startsWith("ccopy_reg\n_reconstructor\n(cpetastorm.unischema\nUnischema\nc__builtin__\nobject\nNtR"))
    assert(text.contains("cpetastorm.codecs\nCompressedImageCodec\n") && text.contains("cnumpy\nstr_\n"))
    assert(text.endsWith("b."))
    assert(LegacyPickle.readUnischema(pickle) == schema)
  }

  test("the module paths of Petastorm's earlier releases are read as petastorm's") {
    val schema = Unischema("Old", Seq(UnischemaField("x", "float32", Seq(Some(2)), Some(FieldCodec.Ndarray), false)))
    val old = new String(LegacyPickle.writeUnischema(schema), UTF_8)
      .replace("cpetastorm.unischema\n", "cav.ml.dataset_toolkit.unischema\n")
      .replace("cpetastorm.codecs\n", "cav.experimental.deepdrive.dataset_toolkit.codecs\n")
    assert(old.contains("dataset_toolkit"))
    assert(LegacyPickle.readUnischema(old.getBytes(UTF_8)) == schema)
  }

  test("a pickle naming a class outside the allow-list is refused before anything runs") {
    assert(refusal("cos\nsystem\n(S'touch /tmp/petastorm-pwned'\ntR.") == "Refused to load os.system from a pickle: it " +
      "is not a class that Petastorm metadata contains (nothing was executed)")
    // Protocol 4: STACK_GLOBAL of builtins.eval.
    assert(refusal("\u0080\u0004\u008c\u0008builtins\u008c\u0004eval\u0093.").startsWith("Refused to load builtins.eval"))
    assert(refusal("cnumpy\nint32\n(I1\ntR.") == "numpy.int32 values are not expected in a Unischema pickle")
    assert(refusal("P1\n.") == "Refused pickle opcode 0x50")
  }

  test("a pickle that holds no Unischema, or no pickle at all, is refused") {
    assert(refusal("I1\n.") == "The pickle holds Integer, expected a Unischema")
    assert(refusal("\u0080\u0004\u00ff").startsWith("Unreadable Unischema pickle: "))
    val noFields = "ccopy_reg\n_reconstructor\n(cpetastorm.unischema\nUnischema\nc__builtin__\nobject\nNtR(dV_name\nVx\nsb."
    assert(refusal(noFields) == "The pickled Unischema has no _fields")
  }

  test("a Spark type without a legacy form cannot be written") {
    val schema = Unischema("S", Seq(UnischemaField("m", "string", Nil, scalar(MapType(StringType, StringType)), false)))
    assert(intercept[IllegalArgumentException](LegacyPickle.writeUnischema(schema)).getMessage ==
      "Spark type map<string,string> has no legacy pickle form")
  }

  test("shape dimensions are read exactly: 2^32 + 3 and negative ones are refused, never read modulo 2^32") {
    val schema = Unischema("S", Seq(UnischemaField("a", "float32", Seq(Some(1234567)), Some(FieldCodec.Ndarray), false)))
    val pickle = new String(LegacyPickle.writeUnischema(schema), ISO_8859_1)
    assert(pickle.contains("I1234567\n") && LegacyPickle.readUnischema(pickle.getBytes(ISO_8859_1)) == schema)
    for ((opcode, dim) <- Seq("I4294967299\n" -> "4294967299", "L4294967299L\n" -> "4294967299", "I-1\n" -> "-1")) {
      assert(refusal(pickle.replace("I1234567\n", opcode)) == s"Field 'a': bad shape dimension $dim", opcode)
    }
  }

  test("a length prefix longer than the pickle is refused before anything is allocated") {
    // BINBYTES claiming 2 GB, BYTEARRAY8 claiming 9.9 GB, BINUNICODE claiming 2 GB: each in a pickle of a few bytes
    for (pickle <- Seq("\u0080\u0002B\u00ff\u00ff\u00ff\u007fxy.",
                       "\u0080\u0005\u0096\u0080\u00d5\u00b9\u004d\u0002\u0000\u0000\u0000xy.",
                       "\u0080\u0002X\u00ff\u00ff\u00ff\u007fxy.")) {
      assert(refusal(pickle).matches("A pickle opcode claims \\d+ bytes; the pickle has \\d+ left"))
    }
  }

  test("dict keys and set elements other than strings, numbers and booleans are refused before they are hashed") {
    assert(refusal("\u0080\u0002}]Ns.").contains("dict key or set element of type ArrayList"))  // {[]: None}
    assert(refusal("\u0080\u0002}(]N]Nu.").contains("ArrayList"))  // SETITEMS with list keys
    assert(refusal("\u0080\u0004\u008f(]\u0090.").contains("ArrayList"))  // ADDITEMS of a list
  }
}
