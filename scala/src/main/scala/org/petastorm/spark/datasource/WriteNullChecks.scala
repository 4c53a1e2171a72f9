package org.petastorm.spark.datasource

import java.util.Locale

import org.apache.spark.sql.SparkSession
import org.apache.spark.sql.catalyst.InternalRow
import org.apache.spark.sql.catalyst.expressions.{Alias, AttributeReference, ExprId, Expression, NonSQLExpression, UnaryExpression}
import org.apache.spark.sql.catalyst.expressions.codegen.{CodegenContext, ExprCode, FalseLiteral}
import org.apache.spark.sql.catalyst.expressions.codegen.Block._
import org.apache.spark.sql.catalyst.plans.logical.{LogicalPlan, Project}
import org.apache.spark.sql.catalyst.rules.Rule
import org.apache.spark.sql.execution.LogicalRDD
import org.apache.spark.sql.execution.command.CreateDataSourceTableAsSelectCommand
import org.apache.spark.sql.execution.datasources.InsertIntoHadoopFsRelationCommand
import org.apache.spark.sql.internal.StaticSQLConf
import org.apache.spark.sql.types.DataType
import org.petastorm.spark.PetastormExtensions

/**
 * Null checks for a petastorm write, as an optimizer rule. Rows that Spark takes without checking them against
 * their schema (PySpark's `createDataFrame(..., verifySchema=False)`, which tensors need, and Arrow conversions)
 * reach the plan as a LogicalRDD whose columns may claim to hold no null while they do; Spark's
 * scan then reads such a null as 0 (a number) or fails with a NullPointerException naming no column (a struct, such
 * as a tensor), before any writer sees the row. In the query of a petastorm write, such a scan reads its non-nullable
 * columns as nullable and a check puts them back: a null fails the task with an IllegalArgumentException naming the
 * column. Injected by [[PetastormExtensions]]; a session without the extension gets it from its first petastorm write.
 */
object WriteNullChecks extends Rule[LogicalPlan] {
  private val Names = Set("petastorm", classOf[PetastormDataSource].getName, classOf[PetastormFileFormat].getName)
    .map(_.toLowerCase(Locale.ROOT))

  override def apply(plan: LogicalPlan): LogicalPlan = plan.transformDown {
    case write: InsertIntoHadoopFsRelationCommand if write.fileFormat.isInstanceOf[PetastormFileFormat] =>
      val query = guard(write.query)
      if (query eq write.query) write else write.copy(query = query)
    case ctas: CreateDataSourceTableAsSelectCommand if ctas.table.provider.exists(p => Names(p.toLowerCase(Locale.ROOT))) =>
      val query = guard(ctas.query)
      if (query eq ctas.query) ctas else ctas.copy(query = query)
  }

  /** Adds the rule to `session` unless it has it (through the extension or an earlier call). */
  def register(session: SparkSession): Unit = {
    val extensions = session.sparkContext.getConf.get(StaticSQLConf.SPARK_SESSION_EXTENSIONS.key, "")
    val experimental = session.experimental
    if (!extensions.contains(classOf[PetastormExtensions].getName) && !experimental.extraOptimizations.contains(this)) {
      experimental.extraOptimizations = experimental.extraOptimizations :+ this
    }
  }

  private def guard(query: LogicalPlan): LogicalPlan = query.transformUp {
    case scan: LogicalRDD if scan.output.exists(!_.nullable) => checked(scan)
  }

  /** `scan` reading its non-nullable columns as nullable, under a projection that checks them. */
  private def checked(scan: LogicalPlan): LogicalPlan = {
    val nullable: Map[ExprId, AttributeReference] = scan.output.collect {
      case a: AttributeReference if !a.nullable => a.exprId -> a.withNullability(true).newInstance()
    }.toMap
    val relaxed = scan.transformExpressions {
      case a: AttributeReference if nullable.contains(a.exprId) => nullable(a.exprId)
    }
    Project(scan.output.map { a =>
      nullable.get(a.exprId) match {
        case Some(read) => Alias(NotNullColumn(read, a.name), a.name)(a.exprId, a.qualifier, Some(a.metadata))
        case None => a
      }
    }, relaxed)
  }
}

/** `child`, failing with an error naming `column` when it is null. */
final case class NotNullColumn(child: Expression, column: String) extends UnaryExpression with NonSQLExpression {
  override def dataType: DataType = child.dataType
  override def nullable: Boolean = false

  private def message: String = s"Column '$column' holds a null, but its type says it cannot (nullable = false): " +
    "declare the column nullable, or replace the null"

  override def eval(input: InternalRow): Any = {
    val value = child.eval(input)
    if (value == null) throw new IllegalArgumentException(message)
    value
  }

  override protected def doGenCode(ctx: CodegenContext, ev: ExprCode): ExprCode = {
    val value = child.genCode(ctx)
    val text = ctx.addReferenceObj("message", message)
    ev.copy(code = code"""
      |${value.code}
      |if (${value.isNull}) {
      |  throw new IllegalArgumentException($text);
      |}""".stripMargin, isNull = FalseLiteral, value = value.value)
  }

  override protected def withNewChildInternal(newChild: Expression): NotNullColumn = copy(child = newChild)
}
