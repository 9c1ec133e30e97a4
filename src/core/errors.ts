/** One base class for the errors this service throws on purpose, with named subclasses. */
export class ReleaserError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * The configuration is unusable (environment, secret): the whole invocation fails before any KooDrive
 * call, so SQS redelivers the batch and an operator sees the message. Lists every problem at once.
 */
export class ConfigError extends ReleaserError {
  readonly problems: string[];

  constructor(what: string, problems: string[], options?: ErrorOptions) {
    super(`${what}: ${problems.join('; ')}`, options);
    this.problems = problems;
  }
}
