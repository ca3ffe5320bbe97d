// Step-up authentication (RFC 9470): whether the authentication event behind a token meets a
// route's requirements, from the token's `acr` and `auth_time` (JWT claims, RFC 9068 §2.2.1, or
// introspection members, RFC 9470 §6.2). A token that falls short gets 401
// error="insufficient_user_authentication" with acr_values / max_age telling the client what to ask
// the authorization server for. https://www.rfc-editor.org/rfc/rfc9470#section-3

export interface StepUpPolicy {
  /** Accepted `acr` values, most preferred first. */
  acrValues?: readonly string[];
  /** Largest accepted age of the authentication, in seconds. */
  maxAgeSeconds?: number;
  clockSkewSeconds: number;
}

/** Values as the token carries them: checked for type here. */
export interface AuthenticationEvent {
  acr?: unknown;
  authTime?: unknown;
}

/** Reason -> the error a client gets (the status is 401 for both). */
export const STEP_UP_REASONS = {
  acr_missing: 'insufficient_user_authentication',
  acr_not_accepted: 'insufficient_user_authentication',
  auth_time_missing: 'insufficient_user_authentication',
  auth_time_invalid: 'insufficient_user_authentication',
  auth_time_too_old: 'insufficient_user_authentication',
  // Authenticated "later than now": the token's claims contradict each other (or the clocks do).
  // Asking the user to authenticate again would not change that: the token is refused as invalid.
  auth_time_in_future: 'invalid_token',
} as const;

export type StepUpReason = keyof typeof STEP_UP_REASONS;

export const STEP_UP_DESCRIPTION = 'A stronger or more recent authentication is required';

export type StepUpResult =
  | { ok: true }
  | {
      ok: false;
      reason: StepUpReason;
      error: (typeof STEP_UP_REASONS)[StepUpReason];
      /**
       * For the challenge (resourceChallengeParams): every requirement, whichever failed, so one new
       * token meets them all.
       */
      acrValues?: readonly string[];
      maxAge?: number;
    };

export function stepUpPolicy(cfg: {
  acr_values?: readonly string[];
  max_age_seconds?: number;
  clock_skew_seconds: number;
}): StepUpPolicy {
  return { acrValues: cfg.acr_values, maxAgeSeconds: cfg.max_age_seconds, clockSkewSeconds: cfg.clock_skew_seconds };
}

/** Checks `acr` first, then `auth_time`; `nowMs` in milliseconds since the epoch. */
export function checkStepUp(policy: StepUpPolicy, event: AuthenticationEvent, nowMs: number): StepUpResult {
  const fail = (reason: StepUpReason): StepUpResult => ({
    ok: false,
    reason,
    error: STEP_UP_REASONS[reason],
    acrValues: policy.acrValues,
    maxAge: policy.maxAgeSeconds,
  });

  if (policy.acrValues !== undefined) {
    const acr = event.acr;
    if (acr === undefined || acr === null || acr === '') return fail('acr_missing');
    // Compared as strings, exactly: an ACR is an identifier (often a URI), not a level to be ordered.
    if (typeof acr !== 'string' || !policy.acrValues.includes(acr)) return fail('acr_not_accepted');
  }

  if (policy.maxAgeSeconds !== undefined) {
    const t = event.authTime;
    if (t === undefined || t === null) return fail('auth_time_missing');
    // A NumericDate (RFC 7519 §2): seconds, a JSON number. A string or a negative value is not one.
    if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) return fail('auth_time_invalid');
    const now = nowMs / 1000;
    if (t > now + policy.clockSkewSeconds) return fail('auth_time_in_future');
    if (now - t > policy.maxAgeSeconds + policy.clockSkewSeconds) return fail('auth_time_too_old');
  }
  return { ok: true };
}
