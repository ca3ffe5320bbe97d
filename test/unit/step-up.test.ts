// Step-up authentication (RFC 9470, src/resources/step-up.ts): acr and auth_time missing, wrong,
// stale and right, from JWT claims and introspection members alike, and the challenge it gives.
import { describe, expect, it } from 'vitest';
import { addChallengeParams, resourceChallengeParams } from '../../src/resources/challenge.ts';
import { checkStepUp, STEP_UP_DESCRIPTION, stepUpPolicy, type StepUpPolicy } from '../../src/resources/step-up.ts';
import { stepUpSchema } from '../../src/resources/schema.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const now = NOW / 1000;
const both: StepUpPolicy = {
  acrValues: ['urn:example:mfa', 'urn:example:hwk'],
  maxAgeSeconds: 300,
  clockSkewSeconds: 60,
};
const acrOnly: StepUpPolicy = { acrValues: ['urn:example:mfa'], clockSkewSeconds: 60 };
const ageOnly: StepUpPolicy = { maxAgeSeconds: 300, clockSkewSeconds: 60 };

const reason = (p: StepUpPolicy, acr: unknown, authTime: unknown) => {
  const r = checkStepUp(p, { acr, authTime }, NOW);
  return r.ok ? 'ok' : r.reason;
};

describe('acr', () => {
  it('right: one of the accepted values, whichever', () => {
    expect(reason(acrOnly, 'urn:example:mfa', undefined)).toBe('ok');
    expect(reason(both, 'urn:example:hwk', now - 10)).toBe('ok');
  });

  it('missing: absent, null or empty', () => {
    for (const acr of [undefined, null, '']) expect(reason(acrOnly, acr, undefined)).toBe('acr_missing');
  });

  it('wrong: another value, another case, or not a string at all', () => {
    for (const acr of [
      'urn:example:pwd',
      'URN:EXAMPLE:MFA',
      'urn:example:mfa ',
      2,
      ['urn:example:mfa'],
      { value: 'urn:example:mfa' },
      true,
    ]) {
      expect(reason(acrOnly, acr, undefined), JSON.stringify(acr)).toBe('acr_not_accepted');
    }
  });

  it('not checked when only max_age is required', () => {
    expect(reason(ageOnly, undefined, now)).toBe('ok');
    expect(reason(ageOnly, 'anything', now)).toBe('ok');
  });
});

describe('auth_time', () => {
  it('right: recent enough, the skew allowed on both sides', () => {
    expect(reason(ageOnly, undefined, now)).toBe('ok');
    expect(reason(ageOnly, undefined, now - 300)).toBe('ok');
    expect(reason(ageOnly, undefined, now - 360)).toBe('ok');
    expect(reason(ageOnly, undefined, now + 60)).toBe('ok');
    expect(reason(ageOnly, undefined, now - 100.5)).toBe('ok');
  });

  it('stale: older than max_age plus skew', () => {
    expect(reason(ageOnly, undefined, now - 361)).toBe('auth_time_too_old');
    expect(reason(ageOnly, undefined, 0)).toBe('auth_time_too_old');
    expect(reason({ maxAgeSeconds: 0, clockSkewSeconds: 0 }, undefined, now - 1)).toBe('auth_time_too_old');
    expect(reason({ maxAgeSeconds: 0, clockSkewSeconds: 0 }, undefined, now)).toBe('ok');
  });

  it('missing, or not a NumericDate', () => {
    for (const t of [undefined, null]) expect(reason(ageOnly, undefined, t)).toBe('auth_time_missing');
    for (const t of [String(now), -1, Number.NaN, Infinity, [now], { t: now }, true]) {
      expect(reason(ageOnly, undefined, t), String(t)).toBe('auth_time_invalid');
    }
  });

  it('in the future beyond the skew: the token contradicts itself, so invalid_token, not a step-up', () => {
    const r = checkStepUp(ageOnly, { authTime: now + 61 }, NOW);
    expect(r).toEqual({
      ok: false,
      reason: 'auth_time_in_future',
      error: 'invalid_token',
      acrValues: undefined,
      maxAge: 300,
    });
  });

  it('not checked when only acr is required', () => {
    expect(reason(acrOnly, 'urn:example:mfa', undefined)).toBe('ok');
    expect(reason(acrOnly, 'urn:example:mfa', 'garbage')).toBe('ok');
  });
});

describe('the failure and its challenge (RFC 9470 §3)', () => {
  it('carries every requirement, whichever failed, so one new token satisfies them all', () => {
    expect(checkStepUp(both, { acr: 'urn:example:pwd', authTime: now }, NOW)).toEqual({
      ok: false,
      reason: 'acr_not_accepted',
      error: 'insufficient_user_authentication',
      acrValues: ['urn:example:mfa', 'urn:example:hwk'],
      maxAge: 300,
    });
    expect(checkStepUp(both, { acr: 'urn:example:mfa', authTime: now - 3600 }, NOW)).toMatchObject({
      reason: 'auth_time_too_old',
      acrValues: both.acrValues,
      maxAge: 300,
    });
  });

  it('gives the 401 challenge with error, acr_values, max_age and resource_metadata', () => {
    const r = checkStepUp(both, { acr: undefined, authTime: now }, NOW);
    if (r.ok) throw new Error('expected a failure');
    const header = addChallengeParams(
      `Bearer realm="portcullis", error="${r.error}", error_description="${STEP_UP_DESCRIPTION}"`,
      resourceChallengeParams({
        acrValues: r.acrValues,
        maxAge: r.maxAge,
        resourceMetadata: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
      }),
    );
    expect(header).toBe(
      'Bearer realm="portcullis", error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="urn:example:mfa urn:example:hwk", max_age="300", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
    );
  });
});

describe('sources of acr and auth_time', () => {
  it('JWT claims and an introspection answer are read the same way', () => {
    const policy = stepUpPolicy(stepUpSchema.parse({ acr_values: ['urn:example:mfa'], max_age_seconds: 300 }));
    const jwtClaims = { iss: 'https://idp.example.com', sub: 'alice', acr: 'urn:example:mfa', auth_time: now - 120 };
    const introspection = {
      active: true,
      sub: 'alice',
      acr: 'urn:example:mfa',
      auth_time: now - 120,
      token_type: 'Bearer',
    };
    expect(checkStepUp(policy, { acr: jwtClaims.acr, authTime: jwtClaims.auth_time }, NOW)).toEqual({ ok: true });
    expect(checkStepUp(policy, { acr: introspection.acr, authTime: introspection.auth_time }, NOW)).toEqual({
      ok: true,
    });
    const stale = { active: true, acr: 'urn:example:mfa', auth_time: now - 7200 };
    expect(checkStepUp(policy, { acr: stale.acr, authTime: stale.auth_time }, NOW)).toMatchObject({
      ok: false,
      reason: 'auth_time_too_old',
    });
  });
});

describe('routes[].step_up schema', () => {
  it('needs acr_values, max_age_seconds or both; skew defaults to 60', () => {
    expect(stepUpSchema.parse({ max_age_seconds: 0 })).toEqual({ max_age_seconds: 0, clock_skew_seconds: 60 });
    expect(stepUpSchema.safeParse({}).success).toBe(false);
    expect(stepUpSchema.safeParse({ clock_skew_seconds: 5 }).success).toBe(false);
  });

  it('refuses ACR values a challenge cannot carry, and negative or fractional ages', () => {
    for (const bad of [['two words'], ['a"b'], ['a\\b'], [''], []])
      expect(stepUpSchema.safeParse({ acr_values: bad }).success, JSON.stringify(bad)).toBe(false);
    for (const bad of [-1, 1.5, 31 * 24 * 3600])
      expect(stepUpSchema.safeParse({ max_age_seconds: bad }).success, String(bad)).toBe(false);
    expect(stepUpSchema.safeParse({ acr_values: ['urn:x'], unknown: 1 }).success).toBe(false);
  });
});
