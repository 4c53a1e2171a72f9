// One build for the JVM half of petastorm: the `petastorm` DataSource V2, the tensor UDT and the SQL functions.
// Spark is `provided` and compiled against exactly the jars that the pinned pyspark ships (pyspark/jars), so the
// jar, the Python package and the test sessions always agree on one Spark release.
import scala.sys.process._

val projectVersion = IO.read(file("VERSION")).trim

// Spark's jars from the project's virtualenv (or SPARK_JARS_DIR): the same release pyspark runs.
lazy val sparkJarsDir = settingKey[File]("Directory holding the Spark release jars (pyspark/jars).")

def findSparkJars(base: File): File = sys.env.get("SPARK_JARS_DIR").map(file).getOrElse {
  val python = base / ".venv" / "bin" / "python"
  val cmd = Seq(python.getPath, "-c", "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
  val dir = try cmd.!!.trim catch {
    case e: Exception => sys.error(s"Cannot locate pyspark's jars with $python (run `make venv` first, or set SPARK_JARS_DIR): $e")
  }
  file(dir)
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

    sparkJarsDir := findSparkJars(baseDirectory.value),
    // Spark (and everything it brings) is provided by the runtime: compile and test against its jars, never package them.
    Compile / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath,
    Test / unmanagedJars ++= (sparkJarsDir.value ** "*.jar").classpath,

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
