package org.petastorm.spark.format

import java.io.ByteArrayOutputStream
import java.nio.charset.StandardCharsets.ISO_8859_1

/**
 * The text encodings of protocol-0 string arguments, as Python decodes them: UNICODE's raw-unicode-escape and
 * STRING's quoted Python 2 string literal. A malformed argument is an IllegalArgumentException saying what is wrong.
 */
private[format] object PickleText {
  /** Escapes of a string literal that stand for one character. */
  private val Escapes: Map[Char, Int] = Map('\\' -> '\\', '\'' -> '\'', '"' -> '"', 'a' -> 7, 'b' -> 8, 'f' -> 12,
    'n' -> '\n', 'r' -> '\r', 't' -> '\t', 'v' -> 11)

  /** Latin-1, but `\\uXXXX` and `\\UXXXXXXXX` after an odd number of backslashes are code points. */
  def rawUnicodeEscape(raw: Array[Byte]): String = {
    val out = new java.lang.StringBuilder(raw.length)
    var i = 0
    var backslashes = 0
    while (i < raw.length) {
      val c = (raw(i) & 0xff).toChar
      if (backslashes % 2 == 1 && (c == 'u' || c == 'U')) {
        val digits = if (c == 'u') 4 else 8
        out.setLength(out.length - 1)
        out.appendCodePoint(codePoint(hex(raw, i + 1, digits), c))
        i += 1 + digits
        backslashes = 0
      } else {
        out.append(c)
        backslashes = if (c == '\\') backslashes + 1 else 0
        i += 1
      }
    }
    out.toString
  }

  /** The bytes of a quoted literal such as `'a\\n\\x41'`: `\\n`, `\\xhh`, `\\ooo` and the other escapes decoded. */
  def stringLiteral(raw: Array[Byte]): Array[Byte] = {
    if (raw.length < 2 || raw.head != raw.last || (raw.head != '\'' && raw.head != '"')) {
      throw new IllegalArgumentException("a STRING argument that is not quoted")
    }
    val out = new ByteArrayOutputStream(raw.length)
    var i = 1
    while (i < raw.length - 1) {
      val c = (raw(i) & 0xff).toChar
      val next = (raw(i + 1) & 0xff).toChar
      if (c != '\\') {
        out.write(c); i += 1
      } else if (i + 1 == raw.length - 1) {
        throw new IllegalArgumentException("a STRING ending in \\")
      } else if (next == '\n') {
        i += 2
      } else if (Escapes.contains(next)) {
        out.write(Escapes(next)); i += 2
      } else if (next == 'x') {
        out.write(hex(raw, i + 2, 2).toInt); i += 4
      } else if (next >= '0' && next <= '7') {
        val octal = raw.slice(i + 1, (i + 4) min (raw.length - 1)).map(b => (b & 0xff).toChar)
          .takeWhile(ch => ch >= '0' && ch <= '7')
        out.write(Integer.parseInt(new String(octal), 8) & 0xff); i += 1 + octal.length
      } else {
        out.write('\\'); out.write(next); i += 2
      }
    }
    out.toByteArray
  }

  /** `digits` hex digits from `from`. */
  private def hex(raw: Array[Byte], from: Int, digits: Int): Long = {
    val text = new String(raw, from min raw.length, digits min (raw.length - from) max 0, ISO_8859_1)
    if (text.length != digits || !text.forall(Character.digit(_, 16) >= 0)) {
      throw new IllegalArgumentException(s"a bad escape: '$text' is not $digits hex digits")
    }
    java.lang.Long.parseLong(text, 16)
  }

  private def codePoint(value: Long, escape: Char): Int = {
    if (value > Character.MAX_CODE_POINT) throw new IllegalArgumentException(s"a bad \\$escape escape: $value")
    value.toInt
  }
}
