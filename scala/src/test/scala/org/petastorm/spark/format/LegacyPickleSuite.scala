package org.petastorm.spark.format

import java.io.{ByteArrayOutputStream, File}
import java.nio.charset.StandardCharsets.{ISO_8859_1, UTF_8}
import java.util.Base64

import scala.jdk.CollectionConverters._

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
    assert(refusal("P1\n.") == "Refused pickle opcode 0x50 (PERSID) at byte 0: a persistent ID names an object " +
      "outside the pickle")
  }

  test("a pickle that holds no Unischema, or no pickle at all, is refused") {
    assert(refusal("I1\n.") == "The pickle holds int, expected a Unischema")
    assert(refusal("\u0080\u0004\u00ff") == "Unreadable pickle: unknown opcode 0xff at byte 2")
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
      assert(refusal(pickle).matches(
        "Unreadable pickle: a length of \\d+ bytes, with 3 left \\(opcode 0x.. at byte 2\\)"))
    }
  }

  test("dict keys and set elements other than strings, numbers and booleans are refused before they are hashed") {
    assert(refusal("\u0080\u0002}]Ns.").contains("dict key or set element of type list"))  // {[]: None}
    assert(refusal("\u0080\u0002}(]N]Nu.").contains("of type list"))  // SETITEMS with list keys
    assert(refusal("\u0080\u0004\u008f(]\u0090.").contains("of type list"))  // ADDITEMS of a list
  }

  /**
   * A 13-field schema (fields `z a m b o k d c e p g r i`, int32, no codec) as this project's Python pickles it
   * with `pickle.dumps(schema, protocol)`: `OrderedDict()`, then its items by SETITEM or SETITEMS. Protocols 3 and 5
   * write the opcodes of 2 and 4 for it; only the PROTO byte differs.
   */
  private val orderPickles: Map[Int, Array[Byte]] = {
    val written = orderPicklesWritten.map { case (protocol, text) => protocol -> Base64.getDecoder.decode(text) }
    written ++ Seq(3 -> 2, 5 -> 4).map { case (protocol, same) =>
      protocol -> written(same).updated(1, protocol.toByte)
    }
  }

  private lazy val orderPicklesWritten: Map[Int, String] = Map(
    0 -> (
      "Y2NvcHlfcmVnCl9yZWNvbnN0cnVjdG9yCnAwCihjcGV0YXN0b3JtLnVuaXNjaGVtYQpVbmlzY2hlbWEKcDEKY19fYnVpbHRpbl9fCm9iamVj" +
      "dApwMgpOdHAzClJwNAooZHA1ClZfbmFtZQpwNgpWT3JkZXIKcDcKc1ZfZmllbGRzCnA4CmNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApwOQoo" +
      "dFJwMTAKVnoKcDExCmcwCihjcGV0YXN0b3JtLnVuaXNjaGVtYQpVbmlzY2hlbWFGaWVsZApwMTIKY19fYnVpbHRpbl9fCnR1cGxlCnAxMwoo" +
      "ZzExCmNudW1weQppbnQzMgpwMTQKKHROSTAwCnRwMTUKdHAxNgpScDE3CnNWYQpwMTgKZzAKKGcxMgpnMTMKKGcxOApnMTQKKHROSTAwCnRw" +
      "MTkKdHAyMApScDIxCnNWbQpwMjIKZzAKKGcxMgpnMTMKKGcyMgpnMTQKKHROSTAwCnRwMjMKdHAyNApScDI1CnNWYgpwMjYKZzAKKGcxMgpn" +
      "MTMKKGcyNgpnMTQKKHROSTAwCnRwMjcKdHAyOApScDI5CnNWbwpwMzAKZzAKKGcxMgpnMTMKKGczMApnMTQKKHROSTAwCnRwMzEKdHAzMgpS" +
      "cDMzCnNWawpwMzQKZzAKKGcxMgpnMTMKKGczNApnMTQKKHROSTAwCnRwMzUKdHAzNgpScDM3CnNWZApwMzgKZzAKKGcxMgpnMTMKKGczOApn" +
      "MTQKKHROSTAwCnRwMzkKdHA0MApScDQxCnNWYwpwNDIKZzAKKGcxMgpnMTMKKGc0MgpnMTQKKHROSTAwCnRwNDMKdHA0NApScDQ1CnNWZQpw" +
      "NDYKZzAKKGcxMgpnMTMKKGc0NgpnMTQKKHROSTAwCnRwNDcKdHA0OApScDQ5CnNWcApwNTAKZzAKKGcxMgpnMTMKKGc1MApnMTQKKHROSTAw" +
      "CnRwNTEKdHA1MgpScDUzCnNWZwpwNTQKZzAKKGcxMgpnMTMKKGc1NApnMTQKKHROSTAwCnRwNTUKdHA1NgpScDU3CnNWcgpwNTgKZzAKKGcx" +
      "MgpnMTMKKGc1OApnMTQKKHROSTAwCnRwNTkKdHA2MApScDYxCnNWaQpwNjIKZzAKKGcxMgpnMTMKKGc2MgpnMTQKKHROSTAwCnRwNjMKdHA2" +
      "NApScDY1CnNzZzExCmcxNwpzZzE4CmcyMQpzZzIyCmcyNQpzZzI2CmcyOQpzZzMwCmczMwpzZzM0CmczNwpzZzM4Cmc0MQpzZzQyCmc0NQpz" +
      "ZzQ2Cmc0OQpzZzUwCmc1MwpzZzU0Cmc1NwpzZzU4Cmc2MQpzZzYyCmc2NQpzYi4="),
    1 -> (
      "Y2NvcHlfcmVnCl9yZWNvbnN0cnVjdG9yCnEAKGNwZXRhc3Rvcm0udW5pc2NoZW1hClVuaXNjaGVtYQpxAWNfX2J1aWx0aW5fXwpvYmplY3QK" +
      "cQJOdHEDUnEEfXEFKFgFAAAAX25hbWVxBlgFAAAAT3JkZXJxB1gHAAAAX2ZpZWxkc3EIY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEJKVJx" +
      "CihYAQAAAHpxC2gAKGNwZXRhc3Rvcm0udW5pc2NoZW1hClVuaXNjaGVtYUZpZWxkCnEMY19fYnVpbHRpbl9fCnR1cGxlCnENKGgLY251bXB5" +
      "CmludDMyCnEOKU5JMDAKdHEPdHEQUnERWAEAAABhcRJoAChoDGgNKGgSaA4pTkkwMAp0cRN0cRRScRVYAQAAAG1xFmgAKGgMaA0oaBZoDilO" +
      "STAwCnRxF3RxGFJxGVgBAAAAYnEaaAAoaAxoDShoGmgOKU5JMDAKdHEbdHEcUnEdWAEAAABvcR5oAChoDGgNKGgeaA4pTkkwMAp0cR90cSBS" +
      "cSFYAQAAAGtxImgAKGgMaA0oaCJoDilOSTAwCnRxI3RxJFJxJVgBAAAAZHEmaAAoaAxoDShoJmgOKU5JMDAKdHEndHEoUnEpWAEAAABjcSpo" +
      "AChoDGgNKGgqaA4pTkkwMAp0cSt0cSxScS1YAQAAAGVxLmgAKGgMaA0oaC5oDilOSTAwCnRxL3RxMFJxMVgBAAAAcHEyaAAoaAxoDShoMmgO" +
      "KU5JMDAKdHEzdHE0UnE1WAEAAABncTZoAChoDGgNKGg2aA4pTkkwMAp0cTd0cThScTlYAQAAAHJxOmgAKGgMaA0oaDpoDilOSTAwCnRxO3Rx" +
      "PFJxPVgBAAAAaXE+aAAoaAxoDShoPmgOKU5JMDAKdHE/dHFAUnFBdWgLaBFoEmgVaBZoGWgaaB1oHmghaCJoJWgmaCloKmgtaC5oMWgyaDVo" +
      "Nmg5aDpoPWg+aEF1Yi4="),
    2 -> (
      "gAJjcGV0YXN0b3JtLnVuaXNjaGVtYQpVbmlzY2hlbWEKcQApgXEBfXECKFgFAAAAX25hbWVxA1gFAAAAT3JkZXJxBFgHAAAAX2ZpZWxkc3EF" +
      "Y2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEGKVJxByhYAQAAAHpxCGNwZXRhc3Rvcm0udW5pc2NoZW1hClVuaXNjaGVtYUZpZWxkCnEJKGgI" +
      "Y251bXB5CmludDMyCnEKKU6JdHELgXEMWAEAAABhcQ1oCShoDWgKKU6JdHEOgXEPWAEAAABtcRBoCShoEGgKKU6JdHERgXESWAEAAABicRNo" +
      "CShoE2gKKU6JdHEUgXEVWAEAAABvcRZoCShoFmgKKU6JdHEXgXEYWAEAAABrcRloCShoGWgKKU6JdHEagXEbWAEAAABkcRxoCShoHGgKKU6J" +
      "dHEdgXEeWAEAAABjcR9oCShoH2gKKU6JdHEggXEhWAEAAABlcSJoCShoImgKKU6JdHEjgXEkWAEAAABwcSVoCShoJWgKKU6JdHEmgXEnWAEA" +
      "AABncShoCShoKGgKKU6JdHEpgXEqWAEAAABycStoCShoK2gKKU6JdHEsgXEtWAEAAABpcS5oCShoLmgKKU6JdHEvgXEwdWgIaAxoDWgPaBBo" +
      "EmgTaBVoFmgYaBloG2gcaB5oH2ghaCJoJGglaCdoKGgqaCtoLWguaDB1Yi4="),
    4 -> (
      "gASVqwEAAAAAAACME3BldGFzdG9ybS51bmlzY2hlbWGUjAlVbmlzY2hlbWGUk5QpgZR9lCiMBV9uYW1llIwFT3JkZXKUjAdfZmllbGRzlIwL" +
      "Y29sbGVjdGlvbnOUjAtPcmRlcmVkRGljdJSTlClSlCiMAXqUaACMDlVuaXNjaGVtYUZpZWxklJOUKGgMjAVudW1weZSMBWludDMylJOUKU6J" +
      "dJSBlIwBYZRoDihoFGgRKU6JdJSBlIwBbZRoDihoF2gRKU6JdJSBlIwBYpRoDihoGmgRKU6JdJSBlIwBb5RoDihoHWgRKU6JdJSBlIwBa5Ro" +
      "DihoIGgRKU6JdJSBlIwBZJRoDihoI2gRKU6JdJSBlIwBY5RoDihoJmgRKU6JdJSBlIwBZZRoDihoKWgRKU6JdJSBlIwBcJRoDihoLGgRKU6J" +
      "dJSBlIwBZ5RoDihoL2gRKU6JdJSBlIwBcpRoDihoMmgRKU6JdJSBlIwBaZRoDihoNWgRKU6JdJSBlHVoDGgTaBRoFmgXaBloGmgcaB1oH2gg" +
      "aCJoI2glaCZoKGgpaCtoLGguaC9oMWgyaDRoNWg3dWIu")
  )

  test("the fields keep the pickled order in protocols 0 to 5, where a HashMap would reorder them") {
    val names = "zambokdcepgri".map(_.toString)
    val hashed = new java.util.HashMap[String, String]()
    names.foreach(n => hashed.put(n, n))
    assert(hashed.keySet.asScala.toSeq != names)
    for ((protocol, pickle) <- orderPickles) {
      val schema = LegacyPickle.readUnischema(pickle)
      assert(schema == Unischema("Order", names.map(UnischemaField(_, "int32", Nil, None, nullable = false))),
        s"protocol $protocol")
    }
    assert(LegacyPickle.readUnischema(fixturePickle("hello_world")).fields.map(_.name) ==
      Seq("id", "image1", "array_4d"))
  }

  /**
   * A schema whose fields were pickled by pyspark's namedtuple hook, `pyspark.serializers._restore('UnischemaField',
   * names, values)`, as by Petastorm 0.4-0.7: protocols 0 and 2.
   */
  private val restorePickles: Map[Int, String] = Map(
    0 -> (
      "Y2NvcHlfcmVnCl9yZWNvbnN0cnVjdG9yCnAwCihjcGV0YXN0b3JtLnVuaXNjaGVtYQpVbmlzY2hlbWEKcDEKY19fYnVpbHRpbl9fCm9iamVj" +
      "dApwMgpOdHAzClJwNAooZHA1ClZfbmFtZQpwNgpWUmVzdG9yZWQKcDcKc1ZfZmllbGRzCnA4CmNjb2xsZWN0aW9ucwpPcmRlcmVkRGljdApw" +
      "OQoodFJwMTAKVmlkCnAxMQpjcHlzcGFyay5zZXJpYWxpemVycwpfcmVzdG9yZQpwMTIKKFZVbmlzY2hlbWFGaWVsZApwMTMKKFZuYW1lCnAx" +
      "NApWbnVtcHlfZHR5cGUKcDE1ClZzaGFwZQpwMTYKVmNvZGVjCnAxNwpWbnVsbGFibGUKcDE4CnRwMTkKKGcxMQpjbnVtcHkKaW50NjQKcDIw" +
      "Cih0ZzAKKGNwZXRhc3Rvcm0uY29kZWNzClNjYWxhckNvZGVjCnAyMQpnMgpOdHAyMgpScDIzCihkcDI0ClZfc3BhcmtfdHlwZQpwMjUKZzAK" +
      "KGNweXNwYXJrLnNxbC50eXBlcwpJbnRlZ2VyVHlwZQpwMjYKZzIKTnRwMjcKUnAyOApzYkkwMAp0cDI5CnRwMzAKUnAzMQpzVnByaWNlCnAz" +
      "MgpnMTIKKGcxMwpnMTkKKGczMgpjZGVjaW1hbApEZWNpbWFsCnAzMwoodGcwCihnMjEKZzIKTnRwMzQKUnAzNQooZHAzNgpnMjUKZzAKKGNw" +
      "eXNwYXJrLnNxbC50eXBlcwpEZWNpbWFsVHlwZQpwMzcKZzIKTnRwMzgKUnAzOQooZHA0MApWcHJlY2lzaW9uCnA0MQpJMTIKc1ZzY2FsZQpw" +
      "NDIKSTMKc1ZoYXNQcmVjaXNpb25JbmZvCnA0MwpJMDEKc2JzYkkwMQp0cDQ0CnRwNDUKUnA0NgpzVmltYWdlCnA0NwpnMTIKKGcxMwpnMTkK" +
      "KGc0NwpjbnVtcHkKdWludDgKcDQ4CihOSTQKSTMKdHA0OQpnMAooY3BldGFzdG9ybS5jb2RlY3MKQ29tcHJlc3NlZEltYWdlQ29kZWMKcDUw" +
      "CmcyCk50cDUxClJwNTIKKGRwNTMKVl9pbWFnZV9jb2RlYwpwNTQKVi5qcGVnCnA1NQpzVl9xdWFsaXR5CnA1NgpJOTUKc2JJMDAKdHA1Nwp0" +
      "cDU4ClJwNTkKc3NnMTEKZzMxCnNnMzIKZzQ2CnNnNDcKZzU5CnNiLg=="),
    2 -> (
      "gAJjcGV0YXN0b3JtLnVuaXNjaGVtYQpVbmlzY2hlbWEKcQApgXEBfXECKFgFAAAAX25hbWVxA1gIAAAAUmVzdG9yZWRxBFgHAAAAX2ZpZWxk" +
      "c3EFY2NvbGxlY3Rpb25zCk9yZGVyZWREaWN0CnEGKVJxByhYAgAAAGlkcQhjcHlzcGFyay5zZXJpYWxpemVycwpfcmVzdG9yZQpxCVgOAAAA" +
      "VW5pc2NoZW1hRmllbGRxCihYBAAAAG5hbWVxC1gLAAAAbnVtcHlfZHR5cGVxDFgFAAAAc2hhcGVxDVgFAAAAY29kZWNxDlgIAAAAbnVsbGFi" +
      "bGVxD3RxEChoCGNudW1weQppbnQ2NApxESljcGV0YXN0b3JtLmNvZGVjcwpTY2FsYXJDb2RlYwpxEimBcRN9cRRYCwAAAF9zcGFya190eXBl" +
      "cRVjcHlzcGFyay5zcWwudHlwZXMKSW50ZWdlclR5cGUKcRYpgXEXc2KJdHEYh3EZUnEaWAUAAABwcmljZXEbaAloCmgQKGgbY2RlY2ltYWwK" +
      "RGVjaW1hbApxHCloEimBcR19cR5oFWNweXNwYXJrLnNxbC50eXBlcwpEZWNpbWFsVHlwZQpxHymBcSB9cSEoWAkAAABwcmVjaXNpb25xIksM" +
      "WAUAAABzY2FsZXEjSwNYEAAAAGhhc1ByZWNpc2lvbkluZm9xJIh1YnNiiHRxJYdxJlJxJ1gFAAAAaW1hZ2VxKGgJaApoEChoKGNudW1weQp1" +
      "aW50OApxKU5LBEsDh3EqY3BldGFzdG9ybS5jb2RlY3MKQ29tcHJlc3NlZEltYWdlQ29kZWMKcSspgXEsfXEtKFgMAAAAX2ltYWdlX2NvZGVj" +
      "cS5YBQAAAC5qcGVncS9YCAAAAF9xdWFsaXR5cTBLX3ViiXRxMYdxMlJxM3VoCGgaaBtoJ2goaDN1Yi4=")
  )

  test("fields pickled as pyspark.serializers._restore calls (Petastorm 0.4-0.7)") {
    val expected = Unischema("Restored", Seq(
      UnischemaField("id", "int64", Nil, scalar(IntegerType), nullable = false),
      UnischemaField("price", "decimal", Nil, scalar(DecimalType(12, 3)), nullable = true),
      UnischemaField("image", "uint8", Seq(None, Some(4), Some(3)), Some(FieldCodec.Image("jpeg", 95)), false)))
    for ((protocol, pickle) <- restorePickles) {
      assert(LegacyPickle.readUnischema(Base64.getDecoder.decode(pickle)) == expected, s"protocol $protocol")
    }
  }

  test("a state dict shared by many objects is interpreted once") {
    // Protocol 4: 10000 fields, each with its own NdarrayCodec whose state is one shared dict of 10000 entries.
    val count = 10000
    val out = new ByteArrayOutputStream()
    def write(s: String): Unit = out.write(s.getBytes(ISO_8859_1))
    def le(n: Int): String = (0 until 4).map(i => ((n >>> (8 * i)) & 0xff).toChar).mkString
    def str(s: String): Unit = write(s"\u008c${s.length.toChar}$s")
    write("\u0080\u0004cpetastorm.unischema\nUnischema\n)\u0081}(")
    str("_name"); str("S"); str("_fields"); write("ccollections\nOrderedDict\n)R(")
    for (i <- 0 until count) {
      str(s"f$i"); write("cpetastorm.unischema\nUnischemaField\n("); str(s"f$i"); write("cnumpy\nint32\n)")
      write("cpetastorm.codecs\nNdarrayCodec\n)\u0081")
      if (i == 0) {
        write("}(")
        (0 until count).foreach(k => { str(s"k$k"); write("N") })
        write("ur" + le(0))
      } else {
        write("j" + le(0))
      }
      write("b\u0089t\u0081")
    }
    write("uub.")
    val schema = LegacyPickle.readUnischema(out.toByteArray)
    assert(schema.fields.length == count && schema.fields.forall(_.codec.contains(FieldCodec.Ndarray)))
  }
}
