// One build for the JVM half of petastorm: the `petastorm` DataSource V2, the tensor UDT and the SQL functions.
// Spark is `provided`, at exactly the release of the pyspark pinned in requirements/dev.lock, so the jar, the Python
// package and the test sessions always agree on one Spark release. Where its jars come from is chosen by the
// environment variable PETASTORM_SPARK_FROM:
//   pyspark (default) compile and test against the jars that the pinned pyspark ships (pyspark/jars of .venv, or
//                     SPARK_JARS_DIR): what `make jar` and `make test` do;
//   maven             fetch Spark from Maven Central as `provided` dependencies (listed so in the POM), so no
//                     Python environment is needed: what `make publish-local` does without a virtualenv. It
//                     compiles and packages the jar; the tests (which also use spark-mllib) run in pyspark mode.
import scala.sys.process._

val projectVersion = IO.read(file("VERSION")).trim

// The Spark release: the pinned pyspark's version (PyPI spells Spark's "-previewN" as ".devN").
val sparkVersion: String = {
  val lock = file("requirements/dev.lock")
  """(?m)^pyspark==([^\s;#]+)""".r.findFirstMatchIn(IO.read(lock)).map(_.group(1))
    .getOrElse(sys.error(s"No `pyspark==<version>` pin in $lock"))
    .replaceAll("""\.dev(\d+)$""", "-preview$1")
}

val sparkFrom: String = sys.env.getOrElse("PETASTORM_SPARK_FROM", "pyspark").trim.toLowerCase match {
  case from @ ("pyspark" | "maven") => from
  case other => sys.error(s"PETASTORM_SPARK_FROM=$other: expected `pyspark` (the default) or `maven`")
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
    sys.error(s"$python has pyspark $version, but requirements/dev.lock pins $sparkVersion: run `make venv` first")
  file(dir)
}

val sparkSettings: Seq[Setting[_]] = sparkFrom match {
  case "pyspark" => Seq(
    sparkJarsDir := findSparkJars(baseDirectory.value),
    // Spark (and everything it brings) is provided by the runtime: compile and test against its jars, never package them.
    Compile / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath,
    Test / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath
  )
  case "maven" => Seq(
    // spark-sql brings core, catalyst, Hadoop's client API, Parquet, json4s and pickle; spark-hive brings libthrift
    // (FooterKeyValues) at the version Spark ships. `provided`: on the compile classpath and in the POM as such.
    libraryDependencies ++= Seq(
      "org.apache.spark" %% "spark-sql" % sparkVersion % Provided,
      "org.apache.spark" %% "spark-hive" % sparkVersion % Provided
    )
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
    name := "petastorm-spark",
    version := projectVersion,
    scalaVersion := "2.13.18",
    javacOptions ++= Seq("--release", "17"),
    scalacOptions ++= Seq("-release", "17", "-deprecation", "-feature", "-unchecked"),

    Compile / scalaSource := baseDirectory.value / "scala" / "src" / "main" / "scala",
    Compile / resourceDirectory := baseDirectory.value / "scala" / "src" / "main" / "resources",
    Test / scalaSource := baseDirectory.value / "scala" / "src" / "test" / "scala",
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
    // Spark provides the Scala library at run time: keep Ivy (`--packages`) from resolving it again.
    pomPostProcess := { node =>
      import scala.xml._
      import scala.xml.transform._
      new RuleTransformer(new RewriteRule {
        override def transform(n: Node): Seq[Node] = n match {
          case e: Elem if e.label == "dependency" && (e \ "artifactId").text == "scala-library" =>
            e.copy(child = e.child.filterNot(_.label == "scope") :+ <scope>provided</scope>)
          case other => other
        }
      }).transform(node).head
    }
  )
