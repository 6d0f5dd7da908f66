/**
 * Text from outside hoist (a host's stderr, a registry name, a value from a file) made safe to print:
 * control characters, escape sequences and line breaks become visible escapes, so a value can neither
 * drive the terminal nor split a message into lines that look like hoist's own.
 */
export function printable(text: string): string {
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

/**
 * Where hoist's own colors start: private-use characters, not ESC, so that colors survive the
 * output boundary while every ESC from outside is escaped there (see terminalText()). The marker
 * ends in characters drawn at random for each process: text from a host can't spell it and so
 * can't have a color sequence of its own turned into a real one.
 */
export const SGR = `\uE01B${String.fromCharCode(...[...globalThis.crypto.getRandomValues(new Uint8Array(4))].map((b) => 0xe100 + b))}`;

/** hoist's color codes: the marker, `[`, parameters, `m`. */
export const SGR_CODE = new RegExp(`${SGR}\\[([0-9;]*)m`, 'g');

/**
 * The one boundary between hoist and a terminal or its log: control characters from anywhere (a host
 * name, a string a host reports, a remote command's output: ESC, NUL, CR, …) become visible escapes,
 * line breaks stay, and only hoist's own color codes become escape sequences.
 */
export function terminalText(text: string): string {
  return boundary(text).replace(SGR_CODE, '\x1b[$1m');
}

/** Text for the log file: the same escapes, hoist's color codes dropped. */
export function logText(text: string): string {
  return boundary(text).replace(SGR_CODE, '');
}

/** printable() line by line, tabs kept too: neither a line break nor a tab can drive a terminal (a diff has tabs). */
function boundary(text: string): string {
  return text
    .split('\n')
    .map((l) => l.split('\t').map(printable).join('\t'))
    .join('\n');
}
