/**
 * A mistake in one value of the config, found while compiling it: `where` is its path as the
 * operator wrote it (`routes[2].when[0]`, `routes[0].match.path_template`), `detail` what is wrong
 * and what to write instead. The message is both, for `config check`, start and reload.
 */
export class PolicyConfigError extends Error {
  constructor(
    readonly where: string,
    readonly detail: string,
  ) {
    super(`${where}: ${detail}`);
    this.name = 'PolicyConfigError';
  }
}
