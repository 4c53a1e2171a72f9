package org.petastorm.spark.datasource

import org.apache.spark.sql.connector.catalog.Table
import org.apache.spark.sql.execution.datasources.FileFormat
import org.apache.spark.sql.execution.datasources.v2.FileDataSourceV2
import org.apache.spark.sql.types.StructType
import org.apache.spark.sql.util.CaseInsensitiveStringMap
import org.petastorm.spark.SessionFunctions

/**
 * `spark.read.format("petastorm")` / `df.write.format("petastorm")`: Petastorm datasets with tensor columns. Reading
 * also registers petastorm's SQL functions in the session when it was built without the extension.
 */
class PetastormDataSource extends FileDataSourceV2 {
  override def fallbackFileFormat: Class[_ <: FileFormat] = classOf[PetastormFileFormat]
  override def shortName(): String = "petastorm"

  override protected def getTable(options: CaseInsensitiveStringMap): Table = table(options, None)

  override protected def getTable(options: CaseInsensitiveStringMap, schema: StructType): Table =
    table(options, Some(schema))

  private def table(options: CaseInsensitiveStringMap, schema: Option[StructType]): Table = {
    SessionFunctions.register(sparkSession)
    val paths = getPaths(options)
    PetastormTable(getTableName(options, paths), sparkSession, getOptionsWithoutPaths(options), paths, schema,
      fallbackFileFormat)
  }
}
