package org.petastorm.spark.codec

import org.scalatest.funsuite.AnyFunSuite

/** DecodeLimits: the defaults, the confs that set them, and the checks with their messages. */
class DecodeLimitsSuite extends AnyFunSuite {
  private def refusal(body: => Any): String = intercept[DecodeLimitException](body).getMessage

  test("the defaults are the Python reader's; the session confs set them, each a positive whole number") {
    assert(DecodeLimits.Default == DecodeLimits(512L * 1024 * 1024, 89478485L))
    val confs = Map(DecodeLimits.MaxCellBytesConf -> "2048", DecodeLimits.MaxImagePixelsConf -> " 64 ")
    assert(DecodeLimits.fromConf(confs.get) == DecodeLimits(2048, 64))
    assert(DecodeLimits.fromConf(Map(DecodeLimits.MaxCellBytesConf -> "9").get) == DecodeLimits(9, 89478485L))
    assert(DecodeLimits.fromConf(Map.empty[String, String].get) == DecodeLimits.Default)
    for ((key, value, unit) <- Seq((DecodeLimits.MaxImagePixelsConf, "0", "pixels"),
      (DecodeLimits.MaxCellBytesConf, "1g", "bytes"), (DecodeLimits.MaxCellBytesConf, "99999999999999999999", "bytes"))) {
      assert(intercept[IllegalArgumentException](DecodeLimits.fromConf(Map(key -> value).get)).getMessage ==
        s"$key = '$value': expected a positive whole number of $unit")
    }
    assert(intercept[IllegalArgumentException](DecodeLimits(maxImagePixels = -1)).getMessage
      .contains("maxImagePixels must be positive, got -1"))
  }

  test("the checks compare without overflow and name the claim, the limit and how to raise it") {
    val limits = DecodeLimits(maxCellBytes = 1000, maxImagePixels = 100)
    limits.checkArray(125, 8)
    limits.checkArray(0, 8)
    assert(refusal(limits.checkArray(126, 8)) == "the NPY header claims an array of 1,008 bytes, over the limit of " +
      "1,000 (maxCellBytes); raise it with the read option maxCellBytes or the session conf " +
      "spark.petastorm.maxCellBytes if the data really needs it")
    assert(refusal(DecodeLimits(maxCellBytes = Long.MaxValue).checkArray(Long.MaxValue, 8))
      .startsWith("the NPY header claims an array of 73,786,976,294,838,206,456 bytes, over the limit of " +
        "9,223,372,036,854,775,807 (maxCellBytes)"))
    limits.checkZipMember("arr.npy", 1000)
    assert(refusal(limits.checkZipMember("arr.npy", 1001))
      .startsWith("the ZIP directory claims a member 'arr.npy' of 1,001 bytes, over the limit of 1,000"))
    limits.checkImage(10, 10)
    limits.checkImage(0, 4294967295L)
    assert(refusal(limits.checkImage(4294967295L, 4294967295L)) == "the image's header claims 4294967295 x " +
      "4294967295 = 18,446,744,065,119,617,025 pixels, over the limit of 100 (maxImagePixels); raise it with the " +
      "read option maxImagePixels or the session conf spark.petastorm.maxImagePixels if the data really needs it")
  }
}
