package org.petastorm.spark.tensor

/** IEEE 754 binary16 <-> binary32 conversions (round to nearest even), as numpy's float16 does them. */
private[spark] object HalfFloat {
  def toFloat(half: Short): Float = {
    val bits = half & 0xffff
    val sign = (bits & 0x8000) << 16
    val exponent = (bits >>> 10) & 0x1f
    val mantissa = bits & 0x3ff
    if (exponent == 0) {
      val magnitude = mantissa * 5.9604645e-8f // mantissa * 2^-24: zero and subnormals
      if (sign != 0) -magnitude else magnitude
    } else if (exponent == 0x1f) {
      java.lang.Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13))
    } else {
      java.lang.Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
  }

  def fromFloat(value: Float): Short = {
    val f = java.lang.Float.floatToRawIntBits(value)
    val sign = (f >>> 16) & 0x8000
    val abs = f & 0x7fffffff
    val half =
      if (abs >= 0x7f800000) { if (abs > 0x7f800000) 0x7e00 else 0x7c00 } // NaN, infinity
      else if (abs >= 0x477ff000) 0x7c00 // rounds past 65504: infinity
      else if (abs < 0x38800000) { // below 2^-14: subnormal half or zero
        val exponent = abs >>> 23
        if (exponent < 102) 0
        else {
          val shift = 126 - exponent
          val m = (abs & 0x7fffff) | 0x800000
          roundShift(m, shift)
        }
      } else {
        val h = ((abs >>> 23) - 112) << 10 | ((abs & 0x7fffff) >>> 13)
        val rest = abs & 0x1fff
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) h + 1 else h
      }
    (sign | half).toShort
  }

  private def roundShift(m: Int, shift: Int): Int = {
    val r = m >>> shift
    val rest = m & ((1 << shift) - 1)
    val halfway = 1 << (shift - 1)
    if (rest > halfway || (rest == halfway && (r & 1) == 1)) r + 1 else r
  }
}
