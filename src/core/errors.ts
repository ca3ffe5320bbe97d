// The errors a verifier, a store or a header rule throws to deny a Check. Each names its row of the
// reason catalog (reasons.ts), typed so that only a reason of the matching class fits, and carries
// its extra fields as declared properties. Like jose's errors, each class has a stable `code`
// (static and on the instance) for code that must tell them apart without `instanceof` (across
// module copies).
import type { ForbiddenReason, InvalidRequestReason, InvalidTokenReason, UnavailableReason } from './reasons.ts';
import type { Identity } from './types.ts';

/** The credential is not valid (bad signature, expired, unknown key...): 401 invalid_token. */
export class InvalidCredentialError extends Error {
  static readonly code = 'ERR_INVALID_CREDENTIAL';
  readonly code = InvalidCredentialError.code;
  override readonly name = 'InvalidCredentialError';

  constructor(
    /** The catalog reason, for logs and metrics. Never contains the credential. */
    readonly reason: InvalidTokenReason,
    message = 'The access token is invalid',
  ) {
    super(message);
  }
}

/** The credential is valid but may not be used here (route, source address): 403 forbidden. */
export class ForbiddenCredentialError extends Error {
  static readonly code = 'ERR_FORBIDDEN_CREDENTIAL';
  readonly code = ForbiddenCredentialError.code;
  override readonly name = 'ForbiddenCredentialError';

  constructor(
    readonly reason: ForbiddenReason,
    /** Who was refused: the deny's metadata and logs name them. */
    readonly identity: Identity,
  ) {
    super(`forbidden: ${reason}`);
  }
}

/** A dependency needed for this decision is down (introspection, JWKS, Redis): 503 with Retry-After. */
export class DependencyUnavailableError extends Error {
  static readonly code = 'ERR_DEPENDENCY_UNAVAILABLE';
  readonly code = DependencyUnavailableError.code;
  override readonly name = 'DependencyUnavailableError';

  constructor(
    readonly reason: UnavailableReason,
    readonly retryAfterSeconds = 5,
  ) {
    super(`dependency unavailable: ${reason}`);
  }
}

/** An identity value that may not reach the upstream: the Check is denied with 401 invalid_token. */
export class UnsafeHeaderValueError extends Error {
  static readonly code = 'ERR_UNSAFE_HEADER_VALUE';
  readonly code = UnsafeHeaderValueError.code;
  override readonly name = 'UnsafeHeaderValueError';

  constructor(
    /** The identity header the value was for. */
    readonly header: string,
    readonly reason: 'identity_value_unsafe' | 'identity_value_too_long',
  ) {
    super(
      reason === 'identity_value_too_long'
        ? `identity value for ${header} is longer than its max_length`
        : `identity value for ${header} is outside the safe form (visible ASCII without " , ; \\) and the header is not set to percent_encode`,
    );
  }
}

/** The credential cannot be read at all (a malformed client certificate): 400 invalid_request. */
export class InvalidRequestError extends Error {
  static readonly code = 'ERR_INVALID_REQUEST';
  readonly code = InvalidRequestError.code;
  override readonly name = 'InvalidRequestError';

  constructor(readonly reason: InvalidRequestReason) {
    super(`invalid request: ${reason}`);
  }
}
