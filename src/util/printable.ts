/**
 * Text from outside hoist (a host's stderr, a registry name, a value from a file) made safe to print:
 * control characters, escape sequences and line breaks become visible escapes, so a value can neither
 * drive the terminal nor split a message into lines that look like hoist's own.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** printable() for multi-line output shown as such (a command's stderr): line breaks stay, the rest is escaped. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}
