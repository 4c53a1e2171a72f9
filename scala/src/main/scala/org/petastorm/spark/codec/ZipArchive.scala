package org.petastorm.spark.codec

import java.nio.charset.StandardCharsets.{ISO_8859_1, UTF_8}
import java.util.zip.{CRC32, DataFormatException, Inflater}

/** One member of a ZIP archive as its central directory describes it (sizes in bytes; ZIP64 sizes applied). */
private[codec] final case class ZipMember(name: String, flags: Int, method: Int, crc: Long, compressedSize: Long,
                                          size: Long, localHeaderOffset: Long)

/**
 * A ZIP archive held in memory, read the way Python's zipfile reads it: the members' names and sizes come from the
 * central directory, so that a member's size can be checked before it is inflated, and a member is never inflated
 * past the size its entry states (a ZIP bomb fails, never allocates). Stored and DEFLATE members, ZIP64 sizes; no
 * encryption, no archives split over disks. Malformed archives are IllegalArgumentExceptions saying what is wrong.
 */
private[codec] object ZipArchive {
  private val EndSignature = 0x06054b50L
  private val EntrySignature = 0x02014b50L
  private val LocalSignature = 0x04034b50L
  private val EndSize = 22
  private val EntrySize = 46
  private val LocalSize = 30
  private val Zip64Extra = 0x0001

  private def u16(b: Array[Byte], at: Int): Int = (b(at) & 0xff) | (b(at + 1) & 0xff) << 8
  private def u32(b: Array[Byte], at: Int): Long = (u16(b, at) | u16(b, at + 2).toLong << 16) & 0xffffffffL
  private def u64(b: Array[Byte], at: Int): Long = u32(b, at) | u32(b, at + 4) << 32

  private def malformed(what: String) = new IllegalArgumentException(s"malformed ZIP archive: $what")

  /** The members the central directory lists, in its order; empty when the bytes end in no ZIP directory. */
  def members(bytes: Array[Byte]): Seq[ZipMember] = endRecord(bytes).fold(Seq.empty[ZipMember]) { end =>
    val count = u16(bytes, end + 10)
    var at = u32(bytes, end + 16)
    (0 until count).map { i =>
      if (at + EntrySize > bytes.length || u32(bytes, at.toInt) != EntrySignature) {
        throw malformed(s"central directory entry $i is not at offset $at of ${bytes.length} bytes")
      }
      val (entry, next) = member(bytes, at.toInt)
      at = next
      entry
    }
  }

  /** Where the end-of-central-directory record starts: the last 22 bytes, or before a comment of up to 64 KiB. */
  private def endRecord(bytes: Array[Byte]): Option[Int] =
    (bytes.length - EndSize to math.max(0, bytes.length - EndSize - 0xffff) by -1).find { at =>
      u32(bytes, at) == EndSignature && at + EndSize + u16(bytes, at + 20) == bytes.length
    }

  /** The entry at `at` and where the next one starts. */
  private def member(bytes: Array[Byte], at: Int): (ZipMember, Long) = {
    val (nameLength, extraLength, commentLength) = (u16(bytes, at + 28), u16(bytes, at + 30), u16(bytes, at + 32))
    val end = at.toLong + EntrySize + nameLength + extraLength + commentLength
    if (end > bytes.length) throw malformed(s"central directory entry at $at runs past the end of the data")
    val flags = u16(bytes, at + 8)
    val name = new String(bytes, at + EntrySize, nameLength, if ((flags & 0x800) != 0) UTF_8 else ISO_8859_1)
    // ZIP64: a 32-bit field holding 0xffffffff is in the ZIP64 extra field, in this order, when present.
    var (compressed, size, offset) = (u32(bytes, at + 20), u32(bytes, at + 24), u32(bytes, at + 42))
    var extra = at + EntrySize + nameLength
    val extraEnd = math.min(extra + extraLength, bytes.length)  // a crafted length may point past the directory
    while (extra + 4 <= extraEnd) {
      val (id, length) = (u16(bytes, extra), u16(bytes, extra + 2))
      if (id == Zip64Extra) {
        var field = extra + 4
        def next(value: Long): Long =
          if (value != 0xffffffffL || field + 8 > math.min(extra + 4 + length, extraEnd)) value
          else { val v = u64(bytes, field); field += 8; v }
        size = next(size); compressed = next(compressed); offset = next(offset)
      }
      extra += 4 + length
    }
    if (size < 0 || compressed < 0 || offset < 0) throw malformed(s"member '$name' states a size beyond 2^63")
    (ZipMember(name, flags, u16(bytes, at + 10), u32(bytes, at + 16), compressed, size, offset), end)
  }

  /**
   * The bytes of `member`: exactly the size its directory entry states, which the caller has checked. Inflating
   * stops there; data that would inflate further, or less, or fails its CRC, is an error.
   */
  def read(bytes: Array[Byte], member: ZipMember): Array[Byte] = {
    val name = member.name
    if ((member.flags & 1) != 0) throw malformed(s"member '$name' is encrypted")
    if (member.size > Int.MaxValue - 16) {
      throw malformed(s"member '$name' of ${member.size} bytes is larger than a JVM array holds")
    }
    val local = member.localHeaderOffset
    if (local + LocalSize > bytes.length || u32(bytes, local.toInt) != LocalSignature) {
      throw malformed(s"member '$name' has no local header at offset $local of ${bytes.length} bytes")
    }
    val start = local + LocalSize + u16(bytes, local.toInt + 26) + u16(bytes, local.toInt + 28)
    if (start + member.compressedSize > bytes.length) {
      throw malformed(s"member '$name' is truncated: its ${member.compressedSize} bytes from offset $start run past " +
        s"the end of the ${bytes.length} bytes")
    }
    val data = member.method match {
      case 0 if member.compressedSize == member.size =>
        java.util.Arrays.copyOfRange(bytes, start.toInt, (start + member.size).toInt)
      case 0 => throw malformed(s"stored member '$name' states ${member.compressedSize} bytes stored and " +
        s"${member.size} uncompressed")
      case 8 => inflate(bytes, start.toInt, member.compressedSize.toInt, member.size.toInt, name)
      case other => throw malformed(s"member '$name' uses compression method $other (stored and DEFLATE are read)")
    }
    val crc = new CRC32()
    crc.update(data)
    if (crc.getValue != member.crc) throw malformed(s"member '$name' fails its CRC check")
    data
  }

  /** Raw DEFLATE data inflated into exactly `size` bytes; at most one byte more is ever inflated. */
  private def inflate(bytes: Array[Byte], start: Int, length: Int, size: Int, name: String): Array[Byte] = {
    val out = new Array[Byte](size)
    val inflater = new Inflater(true)
    try {
      inflater.setInput(bytes, start, length)
      var filled = 0
      var stalled = false
      while (filled < size && !inflater.finished() && !stalled) {
        val n = inflater.inflate(out, filled, size - filled)
        filled += n
        stalled = n == 0 && (inflater.needsInput() || inflater.needsDictionary())
      }
      if (filled < size) {
        throw malformed(s"member '$name' inflates to $filled bytes, its directory entry states $size")
      }
      if (!inflater.finished()) {
        if (inflater.inflate(new Array[Byte](1)) > 0) {
          throw malformed(s"member '$name' inflates past the $size bytes its directory entry states")
        }
        if (!inflater.finished()) throw malformed(s"member '$name': its DEFLATE data does not end")
      }
      out
    } catch {
      case e: DataFormatException => throw malformed(s"member '$name' is not valid DEFLATE data: ${e.getMessage}")
    } finally inflater.end()
  }
}
