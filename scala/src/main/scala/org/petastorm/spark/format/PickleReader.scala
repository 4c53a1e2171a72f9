package org.petastorm.spark.format

import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.StandardCharsets.{ISO_8859_1, UTF_8}
import java.util.{Arrays, Collections, IdentityHashMap}

import scala.annotation.tailrec
import scala.collection.mutable

import org.petastorm.spark.compat.ArraySeq

/**
 * Reads a pickle (protocols 0 to 5) as data: its opcodes build a tree of [[PickleValue]]s; nothing it names is
 * imported, called or instantiated. What cannot be trusted is bounded: the input's size; every length prefix (at
 * most what is left of the input, checked before anything is allocated); memo indexes; the tree's nesting; and its
 * sharing (a value the memo shares is converted once, so the work stays linear in the input; a cycle is refused).
 * Each opcode creates at most one value, so a pickle creates fewer values than it has bytes. Persistent IDs,
 * extension codes and out-of-band buffers are refused; dict keys and set elements must be str, int, float, bool,
 * None or tuples of them. Anything else wrong is a [[RefusedPickleException]] naming the opcode and its offset.
 */
private[format] object PickleReader {
  import PickleValue._

  val MaxInputBytes: Int = 64 << 20
  val MaxDepth = 64
  val HighestProtocol = 5
  /** The most digits of a number in text (Python's default `int_max_str_digits`): parsing them takes square time. */
  val MaxDigits = 4300

  /** The tree of `pickle`; `resolve` sees each name GLOBAL, STACK_GLOBAL and INST give, to refuse or rename it. */
  def read(pickle: Array[Byte], resolve: Global => Global = identity): PickleValue = {
    if (pickle.length > MaxInputBytes) {
      throw new RefusedPickleException(s"Refused a pickle of ${pickle.length} bytes (the limit is $MaxInputBytes)")
    }
    val machine = new Machine(pickle, resolve)
    val root = try machine.run() catch {
      case e: RefusedPickleException => throw e
      case e: RuntimeException => throw machine.error(e.toString)
    }
    new Converter().value(root, depth = 0)
  }

  private object Op {
    final val Mark = 0x28; final val Stop = 0x2e; final val Pop = 0x30; final val PopMark = 0x31; final val Dup = 0x32
    final val Float = 0x46; final val Int = 0x49; final val BinInt = 0x4a; final val BinInt1 = 0x4b
    final val Long = 0x4c; final val BinInt2 = 0x4d; final val None = 0x4e; final val Reduce = 0x52
    final val String = 0x53; final val BinString = 0x54; final val ShortBinString = 0x55; final val Unicode = 0x56
    final val BinUnicode = 0x58; final val Append = 0x61; final val Build = 0x62; final val Global = 0x63
    final val Dict = 0x64; final val EmptyDict = 0x7d; final val Appends = 0x65; final val Get = 0x67
    final val BinGet = 0x68; final val Inst = 0x69; final val LongBinGet = 0x6a; final val List = 0x6c
    final val EmptyList = 0x5d; final val Obj = 0x6f; final val Put = 0x70; final val BinPut = 0x71
    final val LongBinPut = 0x72; final val SetItem = 0x73; final val Tuple = 0x74; final val EmptyTuple = 0x29
    final val SetItems = 0x75; final val BinFloat = 0x47; final val Proto = 0x80; final val NewObj = 0x81
    final val Tuple1 = 0x85; final val Tuple2 = 0x86; final val Tuple3 = 0x87; final val NewTrue = 0x88
    final val NewFalse = 0x89; final val Long1 = 0x8a; final val Long4 = 0x8b; final val BinBytes = 0x42
    final val ShortBinBytes = 0x43; final val ShortBinUnicode = 0x8c; final val BinUnicode8 = 0x8d
    final val BinBytes8 = 0x8e; final val EmptySet = 0x8f; final val AddItems = 0x90; final val FrozenSet = 0x91
    final val NewObjEx = 0x92; final val StackGlobal = 0x93; final val Memoize = 0x94; final val Frame = 0x95
    final val ByteArray8 = 0x96
  }

  /** The opcodes refused by name, and why. */
  private val Refused: Map[Int, (String, String)] = {
    val persistent = "a persistent ID names an object outside the pickle"
    val extension = "an extension code names an object from a registry outside the pickle"
    val buffer = "an out-of-band buffer is outside the pickle"
    Map(0x50 -> ("PERSID", persistent), 0x51 -> ("BINPERSID", persistent), 0x82 -> ("EXT1", extension),
      0x83 -> ("EXT2", extension), 0x84 -> ("EXT4", extension), 0x97 -> ("NEXT_BUFFER", buffer),
      0x98 -> ("READONLY_BUFFER", buffer))
  }

  /** A value that APPEND, SETITEM, ADDITEMS or BUILD may still change, or that holds one: converted at the end. */
  private sealed abstract class Node(val typeName: String)
  private final class ListNode(val items: mutable.ArrayBuffer[AnyRef]) extends Node("list")
  private final class DictNode(val entries: mutable.ArrayBuffer[(AnyRef, AnyRef)]) extends Node("dict")
  private final class SetNode(val items: mutable.ArrayBuffer[AnyRef], val frozen: Boolean)
    extends Node(if (frozen) "frozenset" else "set")
  private final class TupleNode(val items: IndexedSeq[AnyRef]) extends Node("tuple") {
    /** Whether the tuple may be a dict key; known when it is made, as its items cannot change. */
    val isKey: Boolean = items.forall(PickleReader.isKey)
  }
  private final class CallNode(val func: AnyRef, val args: TupleNode, val kwargs: Option[DictNode])
    extends Node(callName(func)) {
    var state: Option[AnyRef] = None
    val items = mutable.ArrayBuffer.empty[AnyRef]
    val entries = mutable.ArrayBuffer.empty[(AnyRef, AnyRef)]
  }

  /** The type in words of a stack item: a finished [[PickleValue]] (a scalar or a Global) or a [[Node]]. */
  private def typeName(item: AnyRef): String = item match {
    case value: PickleValue => value.typeName
    case node: Node => node.typeName
  }

  private def isKey(item: AnyRef): Boolean = item match {
    case PyNone | _: PyBool | _: PyInt | _: PyFloat | _: PyStr => true
    case tuple: TupleNode => tuple.isKey
    case _ => false
  }

  /** Runs the opcodes on a stack, a stack of MARKs and a memo, as Python's unpickler does, but only builds data. */
  private final class Machine(input: Array[Byte], resolve: Global => Global) {
    private var pos = 0
    private var opcodeAt = 0
    private val stack = mutable.ArrayBuffer.empty[AnyRef]
    /** The stack's size at each open MARK. */
    private val marks = mutable.ArrayBuffer.empty[Int]
    private val memo = mutable.HashMap.empty[Long, AnyRef]

    def error(what: String): RefusedPickleException = {
      val where = if (opcodeAt < input.length) f"opcode 0x${input(opcodeAt) & 0xff}%02x at byte $opcodeAt"
        else s"at byte $opcodeAt, the end"
      new RefusedPickleException(s"Unreadable pickle: $what ($where)")
    }

    @tailrec def run(): AnyRef = {
      opcodeAt = pos
      val opcode = byte()
      if (opcode == Op.Stop) pop() else { step(opcode); run() }
    }

    private def step(opcode: Int): Unit = opcode match {
      case Op.Mark => marks += stack.size
      case Op.Pop => if (stack.size > base) pop() else popMark()
      case Op.PopMark => popMark()
      case Op.Dup => push(peek())
      case Op.Proto => protocol(byte())
      case Op.Frame => length(8) // a frame only groups the opcodes that follow
      case Op.None => push(PyNone)
      case Op.NewTrue => push(PyBool(true))
      case Op.NewFalse => push(PyBool(false))
      case Op.Int => push(intOrBool(numberLine()))
      case Op.BinInt => push(PyInt(unsigned(4).toInt))
      case Op.BinInt1 => push(PyInt(byte()))
      case Op.BinInt2 => push(PyInt(unsigned(2)))
      case Op.Long => push(PyInt(integer(numberLine().stripSuffix("L"))))
      case Op.Long1 => push(PyInt(littleEndian(take(length(1)))))
      case Op.Long4 => push(PyInt(littleEndian(take(length(4)))))
      case Op.Float => push(PyFloat(float(numberLine())))
      case Op.BinFloat => push(PyFloat(ByteBuffer.wrap(take(8)).getDouble))
      case Op.String => push(PyStr(new String(decoded(PickleText.stringLiteral(line())), ISO_8859_1)))
      case Op.BinString => push(PyStr(new String(take(length(4)), ISO_8859_1)))
      case Op.ShortBinString => push(PyStr(new String(take(length(1)), ISO_8859_1)))
      case Op.Unicode => push(PyStr(decoded(PickleText.rawUnicodeEscape(line()))))
      case Op.BinUnicode => push(PyStr(utf8(take(length(4)))))
      case Op.ShortBinUnicode => push(PyStr(utf8(take(length(1)))))
      case Op.BinUnicode8 => push(PyStr(utf8(take(length(8)))))
      case Op.BinBytes => push(PyBytes(ArraySeq.unsafeWrapArray(take(length(4)))))
      case Op.ShortBinBytes => push(PyBytes(ArraySeq.unsafeWrapArray(take(length(1)))))
      case Op.BinBytes8 | Op.ByteArray8 => push(PyBytes(ArraySeq.unsafeWrapArray(take(length(8)))))
      case Op.EmptyList => push(new ListNode(mutable.ArrayBuffer.empty))
      case Op.List => push(new ListNode(mutable.ArrayBuffer(popMark(): _*)))
      case Op.Append => append(popItems(1))
      case Op.Appends => append(popMark())
      case Op.EmptyTuple => push(new TupleNode(Vector.empty))
      case Op.Tuple => push(new TupleNode(popMark()))
      case Op.Tuple1 | Op.Tuple2 | Op.Tuple3 => push(new TupleNode(popItems(opcode - Op.Tuple1 + 1)))
      case Op.EmptyDict => push(new DictNode(mutable.ArrayBuffer.empty))
      case Op.Dict => push(new DictNode(mutable.ArrayBuffer(pairs(popMark()): _*)))
      case Op.SetItem => setItems(popItems(2))
      case Op.SetItems => setItems(popMark())
      case Op.EmptySet => push(new SetNode(mutable.ArrayBuffer.empty, frozen = false))
      case Op.AddItems => addItems(popMark())
      case Op.FrozenSet => push(new SetNode(mutable.ArrayBuffer(popMark().map(key): _*), frozen = true))
      case Op.Global => push(global(utf8(line()), utf8(line())))
      case Op.StackGlobal => push(stackGlobal(popItems(2)))
      case Op.Reduce | Op.NewObj => push(call(kwargs = None))
      case Op.NewObjEx => push(call(kwargs = Some(popDict())))
      case Op.Inst => push(new CallNode(global(utf8(line()), utf8(line())), new TupleNode(popMark()), None))
      case Op.Obj => push(obj(popMark()))
      case Op.Build => build(pop())
      case Op.Put => memoPut(index(numberLine()))
      case Op.BinPut => memoPut(byte())
      case Op.LongBinPut => memoPut(unsigned(4))
      case Op.Memoize => memoPut(memo.size)
      case Op.Get => push(memoGet(index(numberLine())))
      case Op.BinGet => push(memoGet(byte()))
      case Op.LongBinGet => push(memoGet(unsigned(4)))
      case _ => throw unknown(opcode)
    }

    private def protocol(version: Int): Unit =
      if (version > HighestProtocol) throw error(s"protocol $version (this reader reads 0 to $HighestProtocol)")

    private def unknown(opcode: Int): RefusedPickleException = Refused.get(opcode) match {
      case Some((name, why)) =>
        new RefusedPickleException(f"Refused pickle opcode 0x$opcode%02x ($name) at byte $opcodeAt: $why")
      case None => new RefusedPickleException(f"Unreadable pickle: unknown opcode 0x$opcode%02x at byte $opcodeAt")
    }

    private def append(items: IndexedSeq[AnyRef]): Unit = peek() match {
      case list: ListNode => list.items ++= items
      case call: CallNode => call.items ++= items
      case other => throw error(s"APPEND to a value of type ${typeName(other)}")
    }

    private def setItems(items: IndexedSeq[AnyRef]): Unit = {
      val entries = pairs(items)
      peek() match {
        case dict: DictNode => dict.entries ++= entries
        case call: CallNode => call.entries ++= entries
        case other => throw error(s"SETITEM on a value of type ${typeName(other)}")
      }
    }

    private def addItems(items: IndexedSeq[AnyRef]): Unit = peek() match {
      case set: SetNode if !set.frozen => set.items ++= items.map(key)
      case other => throw error(s"ADDITEMS to a value of type ${typeName(other)}")
    }

    private def stackGlobal(names: IndexedSeq[AnyRef]): Global = global(name(names(0)), name(names(1)))

    private def name(item: AnyRef): String = item match {
      case PyStr(s) => s
      case other => throw error(s"a module or class name of type ${typeName(other)}, not str")
    }

    /** REDUCE, NEWOBJ and NEWOBJ_EX: the callable, its arguments and, for NEWOBJ_EX, keyword arguments. */
    private def call(kwargs: Option[DictNode]): CallNode = {
      val args = pop() match {
        case tuple: TupleNode => tuple
        case other => throw error(s"arguments of type ${typeName(other)}, not tuple")
      }
      new CallNode(pop(), args, kwargs)
    }

    private def obj(items: IndexedSeq[AnyRef]): CallNode = {
      if (items.isEmpty) throw error("OBJ without a class")
      new CallNode(items.head, new TupleNode(items.tail), None)
    }

    private def build(state: AnyRef): Unit = peek() match {
      case call: CallNode if call.state.isEmpty => call.state = Some(state)
      case other => throw error(s"BUILD on a value of type ${typeName(other)} (only a call gets a state, once)")
    }

    // Indexes, not last/takeRight: those of a Buffer may walk the whole stack.
    private def base: Int = if (marks.isEmpty) 0 else marks(marks.size - 1)
    private def push(item: AnyRef): Unit = stack += item

    private def peek(): AnyRef = {
      if (stack.size <= base) throw error("stack underflow")
      stack(stack.size - 1)
    }

    private def pop(): AnyRef = {
      val item = peek()
      stack.remove(stack.size - 1)
      item
    }

    private def popItems(count: Int): IndexedSeq[AnyRef] = {
      if (stack.size - base < count) throw error("stack underflow")
      val start = stack.size - count
      val items = Vector.tabulate(count)(i => stack(start + i))
      stack.remove(start, count)
      items
    }

    private def popMark(): IndexedSeq[AnyRef] = {
      if (marks.isEmpty) throw error("no MARK to pop to")
      popItems(stack.size - marks.remove(marks.size - 1))
    }

    private def popDict(): DictNode = pop() match {
      case dict: DictNode => dict
      case other => throw error(s"keyword arguments of type ${typeName(other)}, not dict")
    }

    private def key(item: AnyRef): AnyRef =
      if (isKey(item)) item
      else throw error(s"a dict key or set element of type ${typeName(item)} (only str, int, float, bool, None " +
        "and tuples of them are read)")

    private def pairs(items: IndexedSeq[AnyRef]): IndexedSeq[(AnyRef, AnyRef)] = {
      if (items.size % 2 != 0) throw error(s"an odd number of items (${items.size}) for key-value pairs")
      items.grouped(2).map(pair => key(pair(0)) -> pair(1)).toVector
    }

    private def global(module: String, name: String): Global = resolve(Global(module, name))

    /** A memo index is below the pickle's length: a pickler numbers values from 0, each made by an opcode. */
    private def memoPut(index: Long): Unit = {
      if (index >= input.length) throw error(s"memo index $index, beyond what a pickle of ${input.length} bytes holds")
      memo(index) = peek()
    }

    private def memoGet(index: Long): AnyRef = memo.getOrElse(index, throw error(s"no memo entry $index"))

    private def need(count: Long): Unit =
      if (count > input.length - pos) throw error(s"the pickle ends after ${input.length} bytes (truncated)")

    private def byte(): Int = {
      need(1)
      pos += 1
      input(pos - 1) & 0xff
    }

    private def unsigned(width: Int): Long = {
      need(width)
      pos += width
      (1 to width).foldLeft(0L)((value, i) => (value << 8) | (input(pos - i) & 0xff))
    }

    /** A length prefix: more than what is left of the pickle is refused before anything is allocated. */
    private def length(width: Int): Int = {
      val count = unsigned(width)
      if (count < 0 || count > input.length - pos) {
        throw error(s"a length of ${java.lang.Long.toUnsignedString(count)} bytes, with ${input.length - pos} left")
      }
      count.toInt
    }

    private def take(count: Int): Array[Byte] = {
      need(count)
      pos += count
      Arrays.copyOfRange(input, pos - count, pos)
    }

    private def line(): Array[Byte] = {
      val end = input.indexOf('\n'.toByte, pos)
      if (end < 0) throw error("a line without its end")
      val bytes = take(end - pos)
      pos += 1
      bytes
    }

    private def numberLine(): String = {
      val text = new String(line(), ISO_8859_1).trim
      if (text.length > MaxDigits) throw error(s"a number of ${text.length} characters (at most $MaxDigits)")
      text
    }

    /** INT: `01` and `00` are protocol 0's True and False. */
    private def intOrBool(text: String): PickleValue = text match {
      case "01" => PyBool(true)
      case "00" => PyBool(false)
      case _ => PyInt(integer(text))
    }

    private def integer(text: String): BigInt =
      try BigInt(text) catch { case _: NumberFormatException => throw error(s"'$text' is not an integer") }

    private def index(text: String): Long = {
      val value = integer(text)
      if (value < 0 || !value.isValidLong) throw error(s"memo index $text")
      value.toLong
    }

    private def float(text: String): Double = text.toLowerCase match {
      case "inf" | "+inf" => Double.PositiveInfinity
      case "-inf" => Double.NegativeInfinity
      case "nan" | "+nan" | "-nan" => Double.NaN
      case _ => try text.toDouble catch { case _: NumberFormatException => throw error(s"'$text' is not a float") }
    }

    /** LONG1 and LONG4: little-endian two's complement, no bytes for 0. */
    private def littleEndian(bytes: Array[Byte]): BigInt = if (bytes.isEmpty) BigInt(0) else BigInt(bytes.reverse)

    private def utf8(bytes: Array[Byte]): String =
      try UTF_8.newDecoder().decode(ByteBuffer.wrap(bytes)).toString
      catch { case _: CharacterCodingException => throw error("a string that is not valid UTF-8") }

    /** A text argument decoded by [[PickleText]]; a malformed one is refused. */
    private def decoded[T](decode: => T): T =
      try decode catch { case e: IllegalArgumentException => throw error(e.getMessage) }
  }

  /** Turns nodes into values, each shared node once (a DAG stays linear), refusing cycles and deep nesting. */
  private final class Converter {
    private val converted = new IdentityHashMap[Node, PickleValue]()
    private val open = Collections.newSetFromMap(new IdentityHashMap[Node, java.lang.Boolean]())

    def value(item: AnyRef, depth: Int): PickleValue = item match {
      case leaf: PickleValue => leaf
      case node: Node => Option(converted.get(node)).getOrElse {
        if (depth >= MaxDepth) throw new RefusedPickleException(s"Unreadable pickle: values nest deeper than $MaxDepth")
        if (!open.add(node)) throw new RefusedPickleException("Unreadable pickle: a value contains itself (a cycle)")
        val result = convert(node, depth + 1)
        open.remove(node)
        converted.put(node, result)
        result
      }
    }

    private def convert(node: Node, depth: Int): PickleValue = node match {
      case list: ListNode => PyList(values(list.items, depth))
      case tuple: TupleNode => PyTuple(values(tuple.items, depth))
      case dict: DictNode => PyDict(entries(dict.entries, depth))
      case set: SetNode => PySet(values(set.items, depth), set.frozen)
      case call: CallNode =>
        // Shared arguments are converted once: a TupleNode becomes a PyTuple, a DictNode a PyDict.
        val args = value(call.args, depth).asInstanceOf[PyTuple].items
        val kwargs = call.kwargs.fold(IndexedSeq.empty[(PickleValue, PickleValue)])(
          dict => value(dict, depth).asInstanceOf[PyDict].entries)
        Call(value(call.func, depth), args, kwargs, call.state.map(value(_, depth)), values(call.items, depth),
          entries(call.entries, depth))
    }

    private def values(items: collection.Seq[AnyRef], depth: Int): IndexedSeq[PickleValue] =
      items.iterator.map(value(_, depth)).toVector

    private def entries(pairs: collection.Seq[(AnyRef, AnyRef)], depth: Int): IndexedSeq[(PickleValue, PickleValue)] =
      pairs.iterator.map { case (k, v) => value(k, depth) -> value(v, depth) }.toVector
  }
}
