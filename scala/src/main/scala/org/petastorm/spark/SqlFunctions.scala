package org.petastorm.spark

import org.apache.spark.sql.catalyst.FunctionIdentifier
import org.apache.spark.sql.catalyst.expressions.{Expression, ExpressionInfo}
import org.petastorm.spark.tensor._

/** The SQL functions petastorm adds: name, documentation and how each builds its expression from arguments. */
private[spark] object SqlFunctions {
  type Builder = Seq[Expression] => Expression

  private def function(name: String, className: String, usage: String, arities: Set[Int])(build: Builder) = {
    val checked: Builder = args => {
      if (!arities.contains(args.length)) {
        throw new IllegalArgumentException(
          s"$name takes ${arities.toSeq.sorted.mkString(" or ")} arguments ($usage), got ${args.length}")
      }
      build(args)
    }
    (FunctionIdentifier(name), new ExpressionInfo(className, null, name, usage, "", "", "", "", "", "", "built-in"), checked)
  }

  /** A constant string argument such as a dtype, evaluated when the query is analysed. */
  private def constantString(function: String, what: String, e: Expression): String = {
    if (!e.foldable) throw new IllegalArgumentException(s"$function: the $what must be a constant string")
    Option(e.eval()).map(_.toString).getOrElse(
      throw new IllegalArgumentException(s"$function: the $what must not be null"))
  }

  private def dtypeArg(function: String, e: Expression): DType =
    TensorExpressions.withContext(function)(DType(constantString(function, "dtype", e)))

  val all: Seq[(FunctionIdentifier, ExpressionInfo, Builder)] = Seq(
    function("tensor_shape", classOf[TensorShape].getName, "tensor_shape(tensor) - the dimensions as array<int>",
      Set(1))(args => TensorShape(args.head)),
    function("tensor_dtype", classOf[TensorDTypeName].getName, "tensor_dtype(tensor) - the numpy dtype name",
      Set(1))(args => TensorDTypeName(args.head)),
    function("tensor_to_array", classOf[TensorToArray].getName,
      "tensor_to_array(tensor[, dtype]) - the elements in row-major order, as double unless a dtype is given",
      Set(1, 2))(args => TensorToArray(args.head, args.lift(1).map(dtypeArg("tensor_to_array", _)).getOrElse(DType.Float64))),
    function("tensor_reshape", classOf[TensorReshape].getName,
      "tensor_reshape(tensor, shape) - the same elements with another shape; one dimension may be -1",
      Set(2))(args => TensorReshape(args(0), args(1))),
    function("array_to_tensor", classOf[ArrayToTensor].getName,
      "array_to_tensor(array, shape[, dtype]) - a tensor from a flat array in row-major order",
      Set(2, 3))(args => ArrayToTensor(args(0), args(1), args.lift(2).map(dtypeArg("array_to_tensor", _))))
  )
}
