/**
 * Quotes one argument for bash on the host. Remote scripts always run under bash (fed on stdin), so
 * anything beyond a plain word goes in ANSI-C quotes ($'…'), where only a backslash and a single
 * quote need escaping and newlines and control characters are written as escapes: `$(…)`, quotes
 * and newlines stay literal. The rules are zx's `quote`; they live here because loading zx costs
 * every run 70–90 ms of start-up for this one function.
 */
export function quote(arg: string | number): string {
  const s = String(arg);
  if (s === '') return "$''";
  if (/^[\w/.\-@:=]+$/.test(s)) return s;
  return `$'${s.replace(/[\\'\f\n\r\t\v\0]/g, (c) => ESCAPES[c])}'`;
}

const ESCAPES: Record<string, string> = { '\\': '\\\\', "'": "\\'", '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\0': '\\0' };

/** A command line from separately quoted words. */
export function cmd(...words: (string | number)[]): string {
  return words.map(quote).join(' ');
}
