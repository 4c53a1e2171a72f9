// One build for the JVM half of petastorm: the `petastorm` DataSource V2, the tensor UDT and the SQL functions.
// One source tree, cross-built for each Spark line users are on: one artifact per line, named as the ecosystem
// does, `org.petastorm:petastorm-spark-<line>_<Scala binary>` (e.g. petastorm-spark-3.5_2.12,
// petastorm-spark-4.3_2.13). Spark is always `provided` (listed so in the POM).
//
// The line is chosen by environment variables (the Makefile's `make jars` loops over them):
//   PETASTORM_SPARK_LINE  a line of project/spark-lines.txt   default: the pinned pyspark's (requirements/dev.lock)
//   PETASTORM_SCALA       2.12 | 2.13                         default: the line's first Scala binary there
// and where Spark's jars come from by PETASTORM_SPARK_FROM:
//   pyspark  compile and test against the jars that the pinned pyspark ships (pyspark/jars of .venv, or
//            SPARK_JARS_DIR): the default for the pinned pyspark's line (`make jar`, `make test`); the Spark
//            release is exactly the pinned one, so jar, Python package and test sessions agree on one release;
//   maven    fetch Spark from Maven Central as `provided` dependencies: the default for every other line, and for
//            the pinned line where no virtualenv exists (`make publish-local`).
// Each line builds under its own target/spark-<line>_<Scala binary>/, so switching lines never recompiles another.
// Code that differs between Spark lines lives in scala/src/{main,test}/spark-<dir>/ (the line's shims in
// project/spark-lines.txt); the few Scala 2.13 collections that 2.12 lacks, under one name, in
// scala/src/main/scala-<Scala binary>/.
import scala.sys.process._

val projectVersion = IO.read(file("VERSION")).trim

// The pinned pyspark's version (PyPI spells Spark's "-previewN" as ".devN").
val pinnedSparkVersion: String = {
  val lock = file("requirements/dev.lock")
  """(?m)^pyspark==([^\s;#]+)""".r.findFirstMatchIn(IO.read(lock)).map(_.group(1))
    .getOrElse(sys.error(s"No `pyspark==<version>` pin in $lock"))
    .replaceAll("""\.dev(\d+)$""", "-preview$1")
}
// The first two components of a version: the line of a Spark release, the binary of a Scala release.
def majorMinor(version: String): String = version.split('.').take(2).mkString(".")
val pinnedLine = majorMinor(pinnedSparkVersion)

// THE table of supported Spark lines is project/spark-lines.txt (the Makefile reads it too; its header says what
// each column holds): one row per artifact, the line's first row giving its default Scala binary.
val sparkLineColumns = Seq("line", "scala", "spark", "java", "libthrift", "shims", "test-mllib", "pyspark")
val sparkLineRows: Seq[Map[String, String]] = IO.readLines(file("project/spark-lines.txt")).map(_.trim)
  .filter(row => row.nonEmpty && !row.startsWith("#"))
  .map { row =>
    val fields = row.split("""\s+""").toSeq
    if (fields.size != sparkLineColumns.size)
      sys.error(s"project/spark-lines.txt: expected ${sparkLineColumns.size} columns in `$row`")
    sparkLineColumns.zip(fields).toMap
  }

val sparkLine = sys.env.get("PETASTORM_SPARK_LINE").map(_.trim).filter(_.nonEmpty).getOrElse(pinnedLine)
val rowsOfLine: Seq[Map[String, String]] = sparkLineRows.filter(_("line") == sparkLine) match {
  case Seq() => sys.error(s"PETASTORM_SPARK_LINE=$sparkLine: supported Spark lines are " +
    sparkLineRows.map(_("line")).distinct.mkString(", "))
  case rows => rows
}
val selectedRow: Map[String, String] = sys.env.get("PETASTORM_SCALA").map(_.trim).filter(_.nonEmpty) match {
  case None => rowsOfLine.head
  case Some(binary) => rowsOfLine.find(row => majorMinor(row("scala")) == binary).getOrElse(sys.error(
    s"PETASTORM_SCALA=$binary: Spark $sparkLine is built for Scala " +
      rowsOfLine.map(row => majorMinor(row("scala"))).mkString(", ")))
}
// The pinned pyspark's line builds against the pinned release, whatever the table says.
val sparkVersion = if (sparkLine == pinnedLine) pinnedSparkVersion else selectedRow("spark")
val buildScalaVersion = selectedRow("scala")
val scalaBinary = majorMinor(buildScalaVersion)
val javaRelease = selectedRow("java")
val libthriftVersion = selectedRow("libthrift")
val shimFolders = selectedRow("shims").split(',').toSeq
// The tests also need spark-mllib (ml.linalg vectors): at the line's release, or at the table's test-mllib release
// where the Maven Central mirror in use lacks the line's.
val testMllibVersion = Some(selectedRow("test-mllib")).filter(_ != "-").getOrElse(sparkVersion)

val sparkFrom: String = sys.env.get("PETASTORM_SPARK_FROM").map(_.trim.toLowerCase).filter(_.nonEmpty) match {
  case Some(from @ ("pyspark" | "maven")) => from
  case Some(other) => sys.error(s"PETASTORM_SPARK_FROM=$other: expected `pyspark` or `maven`")
  case None => if (sparkLine == pinnedLine && selectedRow == rowsOfLine.head) "pyspark" else "maven"
}

// Spark's jars from the project's virtualenv (or SPARK_JARS_DIR): the same release pyspark runs.
lazy val sparkJarsDir = settingKey[File]("Directory holding the Spark release jars (pyspark/jars).")

def findSparkJars(base: File): File = sys.env.get("SPARK_JARS_DIR").map(file).getOrElse {
  val python = base / ".venv" / "bin" / "python"
  val cmd = Seq(python.getPath, "-c",
    "import os, pyspark; print(pyspark.__version__); print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
  val Seq(version, dir) = try cmd.!!.trim.linesIterator.toSeq catch {
    case e: Exception => sys.error(
      s"Cannot locate pyspark's jars with $python (run `make venv` first, set SPARK_JARS_DIR, or build against " +
        s"Spark $sparkVersion from Maven Central with PETASTORM_SPARK_FROM=maven): $e")
  }
  if (version.replaceAll("""\.dev(\d+)$""", "-preview$1") != sparkVersion)
    sys.error(s"$python has pyspark $version, but the build wants Spark $sparkVersion: run `make venv` first")
  file(dir)
}

// What the jar needs from the runtime, all `provided`: spark-sql brings core, catalyst, Hadoop's client API,
// Parquet, json4s and pickle; libthrift (FooterKeyValues) comes with Spark's Hive jars, at the version Spark ships;
// on Scala 2.12, scala-collection-compat (shipped by Spark 3.5) provides scala.jdk.CollectionConverters.
val providedModules: Seq[ModuleID] = Seq(
  "org.apache.spark" %% "spark-sql" % sparkVersion,
  "org.apache.thrift" % "libthrift" % libthriftVersion
) ++ (if (scalaBinary == "2.12") Seq("org.scala-lang.modules" %% "scala-collection-compat" % "2.7.0") else Nil)

val sparkSettings: Seq[Setting[_]] = sparkFrom match {
  case "pyspark" => Seq(
    sparkJarsDir := findSparkJars(baseDirectory.value),
    // Spark (and everything it brings) is provided by the runtime: compile and test against its jars, never package them.
    Compile / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath,
    Test / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath
  )
  case "maven" => Seq(
    libraryDependencies ++= providedModules.map(_ % Provided),
    libraryDependencies += "org.apache.spark" %% "spark-mllib" % testMllibVersion % Test
  )
}

// The add-opens list that spark-submit adds by itself (org.apache.spark.launcher.JavaModuleOptions).
val sparkJavaOptions = Seq(
  "java.base/java.lang", "java.base/java.lang.invoke", "java.base/java.lang.reflect", "java.base/java.io",
  "java.base/java.net", "java.base/java.nio", "java.base/java.util", "java.base/java.util.concurrent",
  "java.base/java.util.concurrent.atomic", "java.base/jdk.internal.ref", "java.base/sun.nio.ch",
  "java.base/sun.nio.cs", "java.base/sun.security.action", "java.base/sun.util.calendar",
  "java.security.jgss/sun.security.krb5"
).map(p => s"--add-opens=$p=ALL-UNNAMED") :+ "-Dio.netty.tryReflectionSetAccessible=true"

lazy val root = (project in file("."))
  .settings(
    organization := "org.petastorm",
    name := s"petastorm-spark-$sparkLine",
    moduleName := name.value, // sbt would spell the dot of the line as "-"
    version := projectVersion,
    scalaVersion := buildScalaVersion,
    target := baseDirectory.value / "target" / s"spark-${sparkLine}_$scalaBinary",
    javacOptions ++= Seq("--release", javaRelease),
    scalacOptions ++= Seq("-release", javaRelease, "-deprecation", "-feature", "-unchecked"),

    Compile / scalaSource := baseDirectory.value / "scala" / "src" / "main" / "scala",
    // Per Spark line (shimFolders) and per Scala binary (collections that Scala 2.12 lacks, under one name).
    Compile / unmanagedSourceDirectories ++= (shimFolders.map(d => s"spark-$d") :+ s"scala-$scalaBinary")
      .map(d => baseDirectory.value / "scala" / "src" / "main" / d),
    Compile / resourceDirectory := baseDirectory.value / "scala" / "src" / "main" / "resources",
    Test / scalaSource := baseDirectory.value / "scala" / "src" / "test" / "scala",
    Test / unmanagedSourceDirectories ++= shimFolders.map(d => baseDirectory.value / "scala" / "src" / "test" / s"spark-$d"),
    // The Scala example compiles (and runs, in ExamplesSuite) with the tests.
    Test / unmanagedSourceDirectories += baseDirectory.value / "examples" / "scala",
    Test / resourceDirectory := baseDirectory.value / "scala" / "src" / "test" / "resources",

    sparkSettings,

    libraryDependencies += "org.scalatest" %% "scalatest" % "3.2.19" % Test,

    Test / fork := true,
    Test / parallelExecution := false,
    Test / javaOptions ++= sparkJavaOptions ++ Seq("-Xmx2g", "-Dspark.ui.enabled=false"),
    Test / testOptions += Tests.Argument(TestFrameworks.ScalaTest, "-oD"),

    // Published to a file repository inside target/ (tests resolve `--packages` from it); `publishM2` serves ~/.m2.
    publishTo := Some(MavenCache("petastorm-local", baseDirectory.value / "target" / "m2")),
    publishMavenStyle := true,
    versionScheme := Some("early-semver"),
    publishConfiguration := publishConfiguration.value.withOverwrite(true),
    publishM2Configuration := publishM2Configuration.value.withOverwrite(true),
    Compile / packageDoc / publishArtifact := false,
    // Spark provides the Scala library at run time: keep Ivy (`--packages`) from resolving it again. Built from
    // pyspark's jars, the POM still names what the jar needs from Spark, `provided`, as a Maven-mode build does.
    // Test-only dependencies are left out.
    pomPostProcess := { node =>
      import scala.xml._
      import scala.xml.transform._
      val sbv = scalaBinaryVersion.value
      val injected: Seq[Node] = if (sparkFrom != "pyspark") Nil else providedModules.map { m =>
        val artifact = if (m.crossVersion == CrossVersion.disabled) m.name else s"${m.name}_$sbv"
        <dependency><groupId>{m.organization}</groupId><artifactId>{artifact}</artifactId><version>{m.revision}</version><scope>provided</scope></dependency>
      }
      new RuleTransformer(new RewriteRule {
        override def transform(n: Node): Seq[Node] = n match {
          case e: Elem if e.label == "dependency" && (e \ "artifactId").text == "scala-library" =>
            e.copy(child = e.child.filterNot(_.label == "scope") :+ <scope>provided</scope>)
          // What the tests use (scalatest, spark-mllib) is nothing a user of the jar resolves.
          case e: Elem if e.label == "dependency" && (e \ "scope").text == "test" => Nil
          case e: Elem if e.label == "dependencies" => e.copy(child = e.child ++ injected)
          case other => other
        }
      }).transform(node).head
    }
  )
