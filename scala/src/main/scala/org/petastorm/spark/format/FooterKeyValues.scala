package org.petastorm.spark.format

import java.nio.charset.StandardCharsets.UTF_8

import org.apache.hadoop.conf.Configuration
import org.apache.hadoop.fs.Path
import org.apache.thrift.protocol.{TCompactProtocol, TProtocolUtil, TType}
import org.apache.thrift.transport.TMemoryInputTransport

/**
 * Key/value metadata of a Parquet footer as raw bytes. Parquet's own reader decodes every value as UTF-8, which
 * destroys binary values such as the pickles that Petastorm stores; this reads the Thrift footer directly and
 * keeps the bytes.
 */
object FooterKeyValues {
  private val Magic = "PAR1".getBytes(UTF_8)

  def read(conf: Configuration, file: Path): Map[String, Array[Byte]] = {
    val fs = file.getFileSystem(conf)
    val length = fs.getFileStatus(file).getLen
    // Checked before opening: a named pipe lists as 0 bytes, and opening one blocks until something writes to it.
    if (length < 12) throw new IllegalArgumentException(s"$file is not a Parquet file (only $length bytes)")
    val in = fs.open(file)
    try {
      val tail = new Array[Byte](8)
      in.readFully(length - 8, tail)
      if (!tail.drop(4).sameElements(Magic)) throw new IllegalArgumentException(s"$file is not a Parquet file")
      val footerLength = java.nio.ByteBuffer.wrap(tail, 0, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt
      if (footerLength <= 0 || footerLength > length - 12) {
        throw new IllegalArgumentException(s"$file has a corrupt footer length $footerLength")
      }
      val footer = new Array[Byte](footerLength)
      in.readFully(length - 8 - footerLength, footer)
      parse(footer)
    } finally in.close()
  }

  /** Walks a Thrift-compact `FileMetaData`, keeping field 5 (`key_value_metadata`). */
  private def parse(footer: Array[Byte]): Map[String, Array[Byte]] = {
    val protocol = new TCompactProtocol(new TMemoryInputTransport(footer))
    val out = Map.newBuilder[String, Array[Byte]]
    protocol.readStructBegin()
    var field = protocol.readFieldBegin()
    while (field.`type` != TType.STOP) {
      if (field.id == 5 && field.`type` == TType.LIST) {
        val list = protocol.readListBegin()
        (0 until list.size).foreach { _ =>
          var key: String = null
          var value: Array[Byte] = null
          protocol.readStructBegin()
          var kv = protocol.readFieldBegin()
          while (kv.`type` != TType.STOP) {
            if (kv.id == 1 && kv.`type` == TType.STRING) key = protocol.readString()
            else if (kv.id == 2 && kv.`type` == TType.STRING) {
              val buffer = protocol.readBinary()
              value = new Array[Byte](buffer.remaining()); buffer.get(value)
            } else TProtocolUtil.skip(protocol, kv.`type`)
            protocol.readFieldEnd()
            kv = protocol.readFieldBegin()
          }
          protocol.readStructEnd()
          if (key != null && value != null) out += key -> value
        }
        protocol.readListEnd()
      } else TProtocolUtil.skip(protocol, field.`type`)
      protocol.readFieldEnd()
      field = protocol.readFieldBegin()
    }
    out.result()
  }
}
