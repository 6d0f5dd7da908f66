import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';

const SCHEMA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/hoist-output.schema.json');
let validate: ValidateFunction | undefined;

/** Throws with ajv's reasons when `value` is not what docs/hoist-output.schema.json promises. */
export function assertOutputSchema(value: unknown, what: string): void {
  validate ??= new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(
    JSON.parse(readFileSync(SCHEMA, 'utf8')) as object,
  );
  if (!validate(value)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('\n');
    throw new Error(`${what}: --json output does not match docs/hoist-output.schema.json:\n${why}`);
  }
}
