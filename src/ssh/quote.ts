import { quote as zxQuote } from 'zx/core';

/**
 * Quotes one argument for bash on the host. Remote scripts always run under bash (fed on stdin),
 * so zx's bash quoting ($'…' for anything unusual) keeps `$(…)`, quotes and newlines literal.
 */
export function quote(arg: string | number): string {
  return zxQuote(String(arg));
}

/** A command line from separately quoted words. */
export function cmd(...words: (string | number)[]): string {
  return words.map(quote).join(' ');
}
