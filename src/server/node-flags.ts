// Whether Node was started with a given V8 or Node flag, so that the server's own settings of
// V8 flags leave an operator's choice alone.

/**
 * True when `flag` (`--name`, with or without `=value`) is in Node's command line (`execArgv`)
 * or in NODE_OPTIONS; V8 accepts `_` for `-` in a flag's name, and so does this.
 */
export function nodeFlagGiven(flag: string, execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some(
    (arg) => arg.split('=', 1)[0]!.replaceAll('_', '-') === flag,
  );
}
