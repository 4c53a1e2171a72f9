package org.petastorm.spark.format

import org.petastorm.spark.compat.ArraySeq

/** A value read from a pickle, as plain data: a class or function the pickle names is only a [[PickleValue.Global]]. */
sealed trait PickleValue {
  /** The value's Python type in words, for messages (never the value itself: a shared value may stand for a lot). */
  def typeName: String
}

object PickleValue {
  case object PyNone extends PickleValue { override def typeName: String = "None" }
  final case class PyBool(value: Boolean) extends PickleValue { override def typeName: String = "bool" }
  final case class PyInt(value: BigInt) extends PickleValue { override def typeName: String = "int" }
  final case class PyFloat(value: Double) extends PickleValue { override def typeName: String = "float" }
  /** A `str` (a Python 2 `str`, STRING and BINSTRING, is read as Latin-1). */
  final case class PyStr(value: String) extends PickleValue { override def typeName: String = "str" }
  /** A `bytes` or `bytearray`. */
  final case class PyBytes(value: ArraySeq[Byte]) extends PickleValue { override def typeName: String = "bytes" }
  final case class PyList(items: IndexedSeq[PickleValue]) extends PickleValue { override def typeName: String = "list" }
  final case class PyTuple(items: IndexedSeq[PickleValue]) extends PickleValue {
    override def typeName: String = "tuple"
  }
  /** A dict's entries in the order the pickle sets them (nothing is hashed: a pickler sets each key once). */
  final case class PyDict(entries: IndexedSeq[(PickleValue, PickleValue)]) extends PickleValue {
    override def typeName: String = "dict"
  }
  final case class PySet(items: IndexedSeq[PickleValue], frozen: Boolean) extends PickleValue {
    override def typeName: String = if (frozen) "frozenset" else "set"
  }
  /** A class or function named by GLOBAL, STACK_GLOBAL or INST. */
  final case class Global(module: String, name: String) extends PickleValue {
    override def typeName: String = s"$module.$name"
  }
  /**
   * What REDUCE, NEWOBJ, NEWOBJ_EX, INST or OBJ would have called, `func(*args, **kwargs)`, with the state BUILD
   * would have given the result and the items APPEND(S) and SETITEM(S) would have added to it.
   */
  final case class Call(
      func: PickleValue,
      args: IndexedSeq[PickleValue],
      kwargs: IndexedSeq[(PickleValue, PickleValue)] = Vector.empty,
      state: Option[PickleValue] = None,
      items: IndexedSeq[PickleValue] = Vector.empty,
      entries: IndexedSeq[(PickleValue, PickleValue)] = Vector.empty) extends PickleValue {
    override def typeName: String = callName(func)
  }

  /** A call's type in words: the name of what it calls. */
  private[format] def callName(func: Any): String = func match {
    case Global(module, name) => s"$module.$name(...)"
    case _ => "a call"
  }
}
