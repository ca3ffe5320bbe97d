// Errors a verifier throws so the core can map them to one row of the decision table.

/** The credential is not valid (bad signature, expired, unknown key...). Maps to 401 invalid_token. */
export class InvalidCredentialError extends Error {
  constructor(
    /** Machine reason for logs/metrics, e.g. `jwt_expired`. Never contains the credential. */
    readonly reason: string,
    message = 'The access token is invalid',
  ) {
    super(message);
    this.name = 'InvalidCredentialError';
  }
}

/** A dependency needed for this decision is down (introspection, Redis). Maps to 503. */
export class DependencyUnavailableError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAfterSeconds = 5,
  ) {
    super(`dependency unavailable: ${reason}`);
    this.name = 'DependencyUnavailableError';
  }
}

/** The credential is valid but may not be used here (route, source IP). Maps to 403 forbidden. */
export class ForbiddenCredentialError extends Error {
  constructor(readonly reason: string) {
    super(`forbidden: ${reason}`);
    this.name = 'ForbiddenCredentialError';
  }
}
