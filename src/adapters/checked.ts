/** Data read back from a store (Redis, SQLite) is checked against its schema, never cast: what fails is treated as absent. */
import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'

export interface CheckedReader<T extends TSchema> {
  /** The value, or undefined when `json` is not JSON or not of the schema. */
  parse(json: string): Static<T> | undefined
  /** The value, or undefined when it is not of the schema. */
  check(value: unknown): Static<T> | undefined
}

export function checkedReader<T extends TSchema> (schema: T): CheckedReader<T> {
  const compiled: TypeCheck<T> = TypeCompiler.Compile(schema)
  const check = (value: unknown): Static<T> | undefined => compiled.Check(value) ? value : undefined
  return {
    check,
    parse (json) {
      try {
        return check(JSON.parse(json))
      } catch {
        return undefined
      }
    }
  }
}
