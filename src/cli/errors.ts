// Errors the CLI reports as a plain message (no stack trace) with exit code 2: bad arguments, bad files, bad models.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const EXIT_BAD_INPUT = 2;
