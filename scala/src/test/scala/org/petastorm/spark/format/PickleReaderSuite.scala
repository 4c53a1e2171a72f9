package org.petastorm.spark.format

import java.nio.charset.StandardCharsets.ISO_8859_1
import java.util.Base64

import scala.util.Random

import org.petastorm.spark.compat.ArraySeq
import org.scalatest.funsuite.AnyFunSuite

/** PickleReader: a pickle's opcodes read as data, within limits, and every bad pickle refused. */
class PickleReaderSuite extends AnyFunSuite {
  import PickleValue._

  private def read(pickle: String): PickleValue = PickleReader.read(pickle.getBytes(ISO_8859_1))
  private def refusal(pickle: String): String =
    intercept[RefusedPickleException](read(pickle)).getMessage

  /** `n` as `width` little-endian bytes, one character each. */
  private def le(n: Long, width: Int): String = (0 until width).map(i => ((n >>> (8 * i)) & 0xff).toChar).mkString

  private def ints(values: BigInt*): PyList = PyList(values.map(PyInt).toVector)
  private def tuple(items: PickleValue*): PyTuple = PyTuple(items.toVector)
  private def dict(entries: (String, PickleValue)*): PyDict =
    PyDict(entries.map { case (k, v) => PyStr(k) -> v }.toVector)
  private def bytes(values: Int*): PyBytes = PyBytes(ArraySeq(values.map(_.toByte): _*))

  /**
   * `pickle.dumps(v, protocol)` by Python 3.11, for v = {'s': 'é\n\\u\U0001F600', 'i': [0, 255, 256, 65535, 65536,
   * -2**31, 2**31 - 1, 2**31, -2**63, 2**70, -2**70], 'f': [1.5, -0.25, float('inf')], 't': (), 't1': (None,),
   * 't2': (True, False), 't3': (1, 2, 3), 't4': (1, 2, 3, 4), 'x': shared, 'y': shared, 'l': []}, shared = [1, -1].
   */
  private val pythonPickles: Map[Int, Array[Byte]] = Map(
    0 -> (
      "KGRwMApWcwpwMQpW6Vx1MDAwYVx1MDA1Y3VcVTAwMDFmNjAwCnAyCnNWaQpwMwoobHA0CkkwCmFJMjU1CmFJMjU2CmFJNjU1MzUKYUk2NTUz" +
      "NgphSS0yMTQ3NDgzNjQ4CmFJMjE0NzQ4MzY0NwphTDIxNDc0ODM2NDhMCmFMLTkyMjMzNzIwMzY4NTQ3NzU4MDhMCmFMMTE4MDU5MTYyMDcx" +
      "NzQxMTMwMzQyNEwKYUwtMTE4MDU5MTYyMDcxNzQxMTMwMzQyNEwKYXNWZgpwNQoobHA2CkYxLjUKYUYtMC4yNQphRmluZgphc1Z0CnA3Cih0" +
      "c1Z0MQpwOAooTnRwOQpzVnQyCnAxMAooSTAxCkkwMAp0cDExCnNWdDMKcDEyCihJMQpJMgpJMwp0cDEzCnNWdDQKcDE0CihJMQpJMgpJMwpJ" +
      "NAp0cDE1CnNWeApwMTYKKGxwMTcKSTEKYUktMQphc1Z5CnAxOApnMTcKc1ZsCnAxOQoobHAyMApzLg=="),
    1 -> (
      "fXEAKFgBAAAAc3EBWAkAAADDqQpcdfCfmIBxAlgBAAAAaXEDXXEEKEsAS/9NAAFN//9KAAABAEoAAACASv///39MMjE0NzQ4MzY0OEwKTC05" +
      "MjIzMzcyMDM2ODU0Nzc1ODA4TApMMTE4MDU5MTYyMDcxNzQxMTMwMzQyNEwKTC0xMTgwNTkxNjIwNzE3NDExMzAzNDI0TAplWAEAAABmcQVd" +
      "cQYoRz/4AAAAAAAAR7/QAAAAAAAAR3/wAAAAAAAAZVgBAAAAdHEHKVgCAAAAdDFxCChOdHEJWAIAAAB0MnEKKEkwMQpJMDAKdHELWAIAAAB0" +
      "M3EMKEsBSwJLA3RxDVgCAAAAdDRxDihLAUsCSwNLBHRxD1gBAAAAeHEQXXERKEsBSv////9lWAEAAAB5cRJoEVgBAAAAbHETXXEUdS4="),
    2 -> (
      "gAJ9cQAoWAEAAABzcQFYCQAAAMOpClx18J+YgHECWAEAAABpcQNdcQQoSwBL/00AAU3//0oAAAEASgAAAIBK////f4oFAAAAgACKCAAAAAAA" +
      "AACAigkAAAAAAAAAAECKCQAAAAAAAAAAwGVYAQAAAGZxBV1xBihHP/gAAAAAAABHv9AAAAAAAABHf/AAAAAAAABlWAEAAAB0cQcpWAIAAAB0" +
      "MXEIToVxCVgCAAAAdDJxCoiJhnELWAIAAAB0M3EMSwFLAksDh3ENWAIAAAB0NHEOKEsBSwJLA0sEdHEPWAEAAAB4cRBdcREoSwFK/////2VY" +
      "AQAAAHlxEmgRWAEAAABscRNdcRR1Lg=="),
    3 -> (
      "gAN9cQAoWAEAAABzcQFYCQAAAMOpClx18J+YgHECWAEAAABpcQNdcQQoSwBL/00AAU3//0oAAAEASgAAAIBK////f4oFAAAAgACKCAAAAAAA" +
      "AACAigkAAAAAAAAAAECKCQAAAAAAAAAAwGVYAQAAAGZxBV1xBihHP/gAAAAAAABHv9AAAAAAAABHf/AAAAAAAABlWAEAAAB0cQcpWAIAAAB0" +
      "MXEIToVxCVgCAAAAdDJxCoiJhnELWAIAAAB0M3EMSwFLAksDh3ENWAIAAAB0NHEOKEsBSwJLA0sEdHEPWAEAAAB4cRBdcREoSwFK/////2VY" +
      "AQAAAHlxEmgRWAEAAABscRNdcRR1Lg=="),
    4 -> (
      "gASVzgAAAAAAAAB9lCiMAXOUjAnDqQpcdfCfmICUjAFplF2UKEsAS/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAiggAAAAAAAAAgIoJ" +
      "AAAAAAAAAABAigkAAAAAAAAAAMBljAFmlF2UKEc/+AAAAAAAAEe/0AAAAAAAAEd/8AAAAAAAAGWMAXSUKYwCdDGUToWUjAJ0MpSIiYaUjAJ0" +
      "M5RLAUsCSwOHlIwCdDSUKEsBSwJLA0sEdJSMAXiUXZQoSwFK/////2WMAXmUaBGMAWyUXZR1Lg=="),
    5 -> (
      "gAWVzgAAAAAAAAB9lCiMAXOUjAnDqQpcdfCfmICUjAFplF2UKEsAS/9NAAFN//9KAAABAEoAAACASv///3+KBQAAAIAAiggAAAAAAAAAgIoJ" +
      "AAAAAAAAAABAigkAAAAAAAAAAMBljAFmlF2UKEc/+AAAAAAAAEe/0AAAAAAAAEd/8AAAAAAAAGWMAXSUKYwCdDGUToWUjAJ0MpSIiYaUjAJ0" +
      "M5RLAUsCSwOHlIwCdDSUKEsBSwJLA0sEdJSMAXiUXZQoSwFK/////2WMAXmUaBGMAWyUXZR1Lg==")
  ).map { case (protocol, base64) => protocol -> Base64.getDecoder.decode(base64) }

  private val pythonValue = {
    val shared = ints(1, -1)
    dict("s" -> PyStr("é\n\\u\uD83D\uDE00"),
      "i" -> ints(0, 255, 256, 65535, 65536, BigInt(-1) << 31, Int.MaxValue, BigInt(1) << 31, Long.MinValue,
        BigInt(1) << 70, -(BigInt(1) << 70)),
      "f" -> PyList(Vector(PyFloat(1.5), PyFloat(-0.25), PyFloat(Double.PositiveInfinity))), "t" -> tuple(),
      "t1" -> tuple(PyNone), "t2" -> tuple(PyBool(true), PyBool(false)), "t3" -> tuple(ints(1, 2, 3).items: _*),
      "t4" -> tuple(ints(1, 2, 3, 4).items: _*), "x" -> shared, "y" -> shared, "l" -> PyList(Vector.empty))
  }

  test("Python's pickles of one value read alike in protocols 0 to 5, shared values shared") {
    for ((protocol, pickle) <- pythonPickles) {
      val value = PickleReader.read(pickle)
      assert(value == pythonValue, s"protocol $protocol")
      val entries = value.asInstanceOf[PyDict].entries.toMap
      assert(entries(PyStr("x")) eq entries(PyStr("y")), s"protocol $protocol")
    }
  }

  test("integers, booleans and None: INT, BININT, BININT1, BININT2, LONG, LONG1, LONG4, NONE, NEWTRUE, NEWFALSE") {
    assert(read("I42\n.") == PyInt(42) && read("I-7\n.") == PyInt(-7))
    assert(read("I01\n.") == PyBool(true) && read("I00\n.") == PyBool(false))
    assert(read("J" + le(-2, 4) + ".") == PyInt(-2) && read("K\u00ff.") == PyInt(255))
    assert(read("M" + le(65535, 2) + ".") == PyInt(65535))
    assert(read("L123456789012345678901234567890L\n.") == PyInt(BigInt("123456789012345678901234567890")))
    assert(read("\u008a\u0000.") == PyInt(0) && read("\u008a\u0001\u00ff.") == PyInt(-1))
    assert(read("\u008a\u0002\u00ff\u007f.") == PyInt(32767))
    assert(read("\u008b" + le(2, 4) + "\u0000\u0080.") == PyInt(-32768))
    assert(read("N.") == PyNone && read("\u0088.") == PyBool(true) && read("\u0089.") == PyBool(false))
  }

  test("floats: FLOAT as Python's repr writes it (inf, nan) and BINFLOAT") {
    assert(read("F1.25\n.") == PyFloat(1.25) && read("F-inf\n.") == PyFloat(Double.NegativeInfinity))
    assert(read("Fnan\n.").asInstanceOf[PyFloat].value.isNaN)
    assert(read("G\u003f\u00f8\u0000\u0000\u0000\u0000\u0000\u0000.") == PyFloat(1.5))
  }

  test("strings: STRING, BINSTRING, SHORT_BINSTRING, UNICODE, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8") {
    assert(read("S'a\\'b\\n\\x41\\101\\q\\\\'\n.") == PyStr("a'b\nAA\\q\\"))
    assert(read("S\"x\"\n.") == PyStr("x"))
    assert(read("T" + le(3, 4) + "abc.") == PyStr("abc") && read("U\u0003\u00e9bc.") == PyStr("ébc"))
    // raw-unicode-escape: backslash-u and backslash-U after an odd number of backslashes; other bytes are Latin-1
    assert(read("Va\\u00e9\\U0001f600\\\\u0041\u00e9\n.") == PyStr("aé\uD83D\uDE00\\\\u0041é"))
    assert(read("X" + le(2, 4) + "\u00c3\u00a9.") == PyStr("é"))
    assert(read("\u008c\u0002\u00c3\u00a9.") == PyStr("é"))
    assert(read("\u008d" + le(2, 8) + "\u00c3\u00a9.") == PyStr("é"))
  }

  test("bytes: BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8") {
    assert(read("B" + le(2, 4) + "\u0000\u00ff.") == bytes(0, 255))
    assert(read("C\u0001\u0007.") == bytes(7))
    assert(read("\u008e" + le(1, 8) + "x.") == bytes('x'))
    assert(read("\u0096" + le(0, 8) + ".") == bytes())
  }

  test("lists, tuples, dicts and sets: every way to build them, dicts and sets in pickled order") {
    assert(read("]K\u0001a(K\u0002K\u0003e.") == ints(1, 2, 3) && read("(K\u0001K\u0002l.") == ints(1, 2))
    assert(read(").") == tuple() && read("(K\u0001K\u0002t.") == tuple(PyInt(1), PyInt(2)))
    assert(read("N\u0085.") == tuple(PyNone) && read("NN\u0086.") == tuple(PyNone, PyNone))
    assert(read("NN\u0089\u0087.") == tuple(PyNone, PyNone, PyBool(false)))
    val keys = "zambokdcepgri".map(_.toString)
    val items = keys.zipWithIndex.map { case (k, i) => s"\u008c\u0001${k}K${i.toChar}" }.mkString
    val expected = dict(keys.zipWithIndex.map { case (k, i) => k -> PyInt(i) }: _*)
    assert(read(s"}($items" + "u.") == expected && read(s"($items" + "d.") == expected)
    assert(read("}\u008c\u0001bK\u0001s\u008c\u0001aK\u0002s.") == dict("b" -> PyInt(1), "a" -> PyInt(2)))
    assert(read("}(K\u0001\u008c\u0001at\u0088s.") == PyDict(Vector(tuple(PyInt(1), PyStr("a")) -> PyBool(true))))
    assert(read("\u008f(K\u0002K\u0001\u0090.") == PySet(Vector(PyInt(2), PyInt(1)), frozen = false))
    assert(read("(N\u0091.") == PySet(Vector(PyNone), frozen = true))
  }

  test("stack and memo: MARK, POP, POP_MARK, DUP, PUT, GET, BINPUT, BINGET, LONG_BINPUT, LONG_BINGET, MEMOIZE") {
    assert(read("K\u0001K\u00020.") == PyInt(1) && read("K\u0001(0.") == PyInt(1))
    assert(read("K\u0001(K\u0002K\u00031.") == PyInt(1))
    val dup = read("]2\u0086.").asInstanceOf[PyTuple]
    assert(dup == tuple(PyList(Vector.empty), PyList(Vector.empty)) && (dup.items(0) eq dup.items(1)))
    val seven = tuple(PyInt(7), PyInt(7))
    assert(read("K\u0007p3\ng3\n\u0086.") == seven && read("K\u0007q\u0005h\u0005\u0086.") == seven)
    assert(read("K\u0007r" + le(9, 4) + "j" + le(9, 4) + "\u0086.") == seven)
    assert(read("\u0080\u0004K\u0007\u0094h\u0000\u0086.") == seven)
  }

  test("PROTO and FRAME only frame the opcodes") {
    assert(read("\u0080\u0005\u0095" + le(3, 8) + "K\u0001.") == PyInt(1))
    assert(refusal("\u0080\u0006.") ==
      "Unreadable pickle: protocol 6 (this reader reads 0 to 5) (opcode 0x80 at byte 0)")
  }

  test("names and calls are data: GLOBAL, STACK_GLOBAL, REDUCE, BUILD, NEWOBJ, NEWOBJ_EX, INST, OBJ") {
    val system = Global("os", "system")
    assert(read("cos\nsystem\n(S'rm -rf /'\ntR.") == Call(system, Vector(PyStr("rm -rf /"))))
    assert(read("\u008c\u0002os\u008c\u0006system\u0093.") == system)
    val cls = Global("m", "C")
    assert(read("cm\nC\n)\u0081}(\u008c\u0001aK\u0001ub.") ==
      Call(cls, Vector.empty, state = Some(dict("a" -> PyInt(1)))))
    assert(read("cm\nC\n(K\u0001t}(\u008c\u0001kK\u0002u\u0092.") ==
      Call(cls, Vector(PyInt(1)), kwargs = Vector(PyStr("k") -> PyInt(2))))
    assert(read("(K\u0001im\nC\n.") == Call(cls, Vector(PyInt(1))))
    assert(read("(cm\nC\nK\u0001o.") == Call(cls, Vector(PyInt(1))))
    // An OrderedDict (Python 3) and a list subclass: REDUCE, then SETITEMS or APPENDS record items on the call.
    val ordered = Global("collections", "OrderedDict")
    assert(read("ccollections\nOrderedDict\n)R(\u008c\u0001bK\u0001\u008c\u0001aK\u0002u.") ==
      Call(ordered, Vector.empty, entries = Vector(PyStr("b") -> PyInt(1), PyStr("a") -> PyInt(2))))
    assert(read("cm\nC\n)R(K\u0001eK\u0002a.") == Call(cls, Vector.empty, items = Vector(PyInt(1), PyInt(2))))
  }

  test("every name goes through resolve, which may rename or refuse it") {
    val seen = Seq.newBuilder[Global]
    val value = PickleReader.read("ca\nb\n\u008c\u0001c\u008c\u0001d\u0093(ie\nf\n\u0087.".getBytes(ISO_8859_1),
      { g => seen += g; Global("renamed", g.name) })
    assert(seen.result() == Seq(Global("a", "b"), Global("c", "d"), Global("e", "f")))
    assert(value == tuple(Global("renamed", "b"), Global("renamed", "d"), Call(Global("renamed", "f"), Vector.empty)))
    val refused = intercept[RefusedPickleException](PickleReader.read("cos\nsystem\n.".getBytes(ISO_8859_1),
      _ => throw new RefusedPickleException("no")))
    assert(refused.getMessage == "no")
  }

  test("a length prefix beyond the input is refused before anything is allocated") {
    val claims = Seq("B" + le(0x7fffffff, 4), "X" + le(0xffffffffL, 4), "T" + le(0x80000000L, 4),
      "\u008b" + le(0x7fffffff, 4), "\u008e" + le(1L << 62, 8), "\u008d" + le(-1L, 8), "\u0096" + le(1L << 40, 8),
      "\u0095" + le(1000, 8), "C\u00ff", "U\u0005", "\u008c\u0010", "\u008a\u0009")
    for (claim <- claims) {
      assert(refusal("\u0080\u0004" + claim + "xyz.").matches(
        "Unreadable pickle: a length of \\d+ bytes, with 4 left \\(opcode 0x.. at byte 2\\)"), claim)
    }
    assert(refusal("\u0080\u0004\u008d" + le(-1L, 8)).contains("a length of 18446744073709551615 bytes"))
  }

  test("a pickle over 64 MiB is refused before it is read") {
    assert(intercept[RefusedPickleException](PickleReader.read(new Array[Byte](PickleReader.MaxInputBytes + 1)))
      .getMessage == "Refused a pickle of 67108865 bytes (the limit is 67108864)")
  }

  test("nesting deeper than 64 is refused, however deep, without overflowing the stack") {
    assert(read("]" + "\u0085" * 63 + ".").isInstanceOf[PyTuple])
    for (depth <- Seq(65, 100000)) {
      assert(refusal("]" + "\u0085" * (depth - 1) + ".") == "Unreadable pickle: values nest deeper than 64")
    }
  }

  test("a value that contains itself through the memo is refused") {
    for (cycle <- Seq("]q\u0000h\u0000a.", "}q\u0000\u008c\u0001ah\u0000s.", "cm\nC\n)Rq\u0000h\u0000b.")) {
      assert(refusal(cycle) == "Unreadable pickle: a value contains itself (a cycle)", cycle)
    }
  }

  test("a DAG of 40 levels, each referring twice to the one below, converts in linear time") {
    val levels = 40
    val lists = "]q\u0000" + (1 to levels).map(i => s"(h${(i - 1).toChar}h${(i - 1).toChar}lq${i.toChar}").mkString
    var value = read(lists + ".")
    for (_ <- 1 to levels) {
      val PyList(Seq(left, right)) = value
      assert(left eq right)
      value = left
    }
    assert(value == PyList(Vector.empty))
    // Tuples as a dict key: whether a tuple may be a key is known once, not walked again for each use.
    val tuples = ")q\u00000" +
      (1 to levels).map(i => s"h${(i - 1).toChar}h${(i - 1).toChar}\u0086q${i.toChar}0").mkString
    assert(read("}" + tuples + s"h${levels.toChar}Ns.").isInstanceOf[PyDict])
  }

  test("dict keys and set elements other than str, int, float, bool, None and tuples of them are refused") {
    val lists = Seq("}]Ns.", "}(]Nu.", "(]Nd.", "\u008f(]\u0090.", "(]\u0091.")
    for (pickle <- lists) assert(refusal(pickle).contains("a dict key or set element of type list"), pickle)
    assert(refusal("}(]tNs.").contains("of type tuple") && refusal("}}Ns.").contains("of type dict"))
    assert(refusal("}C\u0000Ns.").contains("of type bytes"))
    assert(refusal("}cos\nsystem\nNs.").contains("of type os.system"))
    assert(refusal("}cm\nC\n)RNs.").contains("of type m.C(...)"))
  }

  test("truncated pickles are refused, each of their prefixes") {
    for ((protocol, pickle) <- pythonPickles; end <- 0 until pickle.length) {
      val e = intercept[RefusedPickleException](PickleReader.read(pickle.take(end)))
      assert(e.getMessage.startsWith("Unreadable pickle: "), s"protocol $protocol, $end bytes")
    }
    assert(refusal("") == "Unreadable pickle: the pickle ends after 0 bytes (truncated) (at byte 0, the end)")
  }

  test("malformed pickles are refused with what is wrong, where") {
    def error(pickle: String) = refusal(pickle).stripPrefix("Unreadable pickle: ")
    assert(error("\u0080\u0004\u00ff") == "unknown opcode 0xff at byte 2")
    assert(error("a.") == "stack underflow (opcode 0x61 at byte 0)")
    assert(error("(.") == "stack underflow (opcode 0x2e at byte 1)")
    assert(error("0.") == "no MARK to pop to (opcode 0x30 at byte 0)")
    assert(error("K\u0001t.") == "no MARK to pop to (opcode 0x74 at byte 2)")
    assert(error("}K\u0001a.") == "APPEND to a value of type dict (opcode 0x61 at byte 3)")
    assert(error("]NNs.") == "SETITEM on a value of type list (opcode 0x73 at byte 3)")
    assert(error("](N\u0090.").startsWith("ADDITEMS to a value of type list"))
    assert(error("]}b.").startsWith("BUILD on a value of type list"))
    assert(error("cm\nC\n)RNbNb.").startsWith("BUILD on a value of type m.C(...)"))
    assert(error("cm\nf\n]R.") == "arguments of type list, not tuple (opcode 0x52 at byte 6)")
    assert(error("cm\nC\n)]\u0092.").startsWith("keyword arguments of type list"))
    assert(error("K\u0001K\u0002\u0093.").startsWith("a module or class name of type int, not str"))
    assert(error("(o.").startsWith("OBJ without a class"))
    assert(error("Nr\u00ff\u00ff\u00ff\u00ff.") ==
      "memo index 4294967295, beyond what a pickle of 7 bytes holds (opcode 0x72 at byte 1)")
    assert(error("h\u0005.") == "no memo entry 5 (opcode 0x68 at byte 0)")
    assert(error("}(K\u0001u.") == "an odd number of items (1) for key-value pairs (opcode 0x75 at byte 4)")
    assert(error("Ix\n.") == "'x' is not an integer (opcode 0x49 at byte 0)")
    assert(error("Fx\n.") == "'x' is not a float (opcode 0x46 at byte 0)")
    assert(error("I" + "9" * 4301 + "\n.").startsWith("a number of 4301 characters (at most 4300)"))
    assert(error("Sabc\n.").startsWith("a STRING argument that is not quoted"))
    assert(error("S'\\x4'\n.") == "a bad escape: '4'' is not 2 hex digits (opcode 0x53 at byte 0)")
    assert(error("S'ab\\'\n.").startsWith("a STRING ending in \\"))
    assert(error("V\\u12\n.").startsWith("a bad escape: '12' is not 4 hex digits"))
    assert(error("V\\U00110000\n.").startsWith("a bad \\U escape: 1114112"))
    assert(error("\u008c\u0001\u00ff.").startsWith("a string that is not valid UTF-8"))
    assert(error("cos\n").startsWith("a line without its end"))
  }

  test("persistent IDs, extensions and out-of-band buffers are refused by name") {
    val refused = Seq("P1\n." -> "0x50 (PERSID)", "NQ." -> "0x51 (BINPERSID)", "\u0082\u0001." -> "0x82 (EXT1)",
      "\u0083\u0001\u0000." -> "0x83 (EXT2)", "\u0084\u0001\u0000\u0000\u0000." -> "0x84 (EXT4)",
      "\u0097." -> "0x97 (NEXT_BUFFER)", "]\u0098." -> "0x98 (READONLY_BUFFER)")
    for ((pickle, opcode) <- refused) assert(refusal(pickle).startsWith(s"Refused pickle opcode $opcode at byte "))
    assert(refusal("NQ.") == "Refused pickle opcode 0x51 (BINPERSID) at byte 1: a persistent ID names an object " +
      "outside the pickle")
  }

  test("damaged pickles give a value or a RefusedPickleException, never another error") {
    val random = new Random(42)
    for ((_, pickle) <- pythonPickles; _ <- 1 to 500) {
      val damaged = pickle.clone()
      for (_ <- 1 to 1 + random.nextInt(3)) damaged(random.nextInt(damaged.length)) = random.nextInt(256).toByte
      try PickleReader.read(damaged) catch { case _: RefusedPickleException => }
    }
  }
}
