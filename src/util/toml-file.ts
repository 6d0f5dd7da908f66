import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { InputError, InputErrors } from './errors.js';
import { TomlLocator } from './toml-locate.js';
import { formatPath, parseWith, type Schema } from './schema.js';

export interface LoadedToml {
  file: string;
  data: Record<string, unknown>;
  locator: TomlLocator;
}

export async function readToml(file: string): Promise<LoadedToml> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read file: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { file });
  }
  return parseToml(file, text);
}

export function parseToml(file: string, text: string): LoadedToml {
  try {
    return { file, data: parse(text) as Record<string, unknown>, locator: new TomlLocator(text) };
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split('\n')[0];
      throw new InputError(`invalid TOML: ${first}`, { file, line: e.line });
    }
    throw e;
  }
}

/** Validates a whole file against its schema; every problem is reported with its line and key. */
export function validateToml<T>(doc: LoadedToml, schema: Schema<T>): T {
  const { value, issues } = parseWith(schema, doc.data, []);
  if (issues.length) {
    throw new InputErrors(issues.map((i) => new InputError(i.message, { file: doc.file, line: doc.locator.lineOf(i.path), key: formatPath(i.path) })));
  }
  return value as T;
}
