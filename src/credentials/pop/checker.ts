// The proof-of-possession checks the decision runs after a token is verified (the core's
// ProofOfPossession, src/core/sender-constraint.ts): what the token's `cnf` binds it to
// (binding.ts), then the client certificate (certificate.ts, RFC 8705) and the DPoP proof (dpop.ts,
// RFC 9449) with its single use (the replay cache).
import type { AuthzRequest, HeaderSet } from '../../core/types.ts';
import type { PopCheckInput, PopCheckResult, ProofOfPossession } from '../../core/sender-constraint.ts';
import type { ReplayCache } from '../../stores/replay-cache.ts';
import { planBinding, readConfirmation } from './binding.ts';
import { checkCertificateBinding, presentedCertificate, type CertificateSource } from './certificate.ts';
import { checkDpopReplay, verifyDpopProof, type DpopPolicy } from './dpop.ts';
import { requestHtu, type HtuOrigins } from './htu.ts';
import type { DpopNonces } from './nonce.ts';
import { POP_REASONS } from './reasons.ts';

export interface DpopSetup {
  policy: DpopPolicy;
  origins: HtuOrigins;
  replay: ReplayCache;
  /** Present with `nonce: required`. */
  nonces?: DpopNonces;
}

export interface PopCheckerOptions {
  /** Absent when credentials.dpop is not configured (then `Authorization: DPoP` is not a credential). */
  dpop?: DpopSetup;
  certificateSource: CertificateSource;
  now(): number;
}

export class PopChecker implements ProofOfPossession {
  readonly dpopAlgorithms: readonly string[] | undefined;

  constructor(private readonly opts: PopCheckerOptions) {
    this.dpopAlgorithms = opts.dpop?.policy.algorithms;
  }

  async check(req: AuthzRequest, input: PopCheckInput): Promise<PopCheckResult> {
    const plan = planBinding({
      scheme: input.scheme,
      confirmation: readConfirmation(input.cnf),
      required: input.required,
    });
    if (plan.action === 'deny') return { ok: false, reason: plan.reason };

    if (plan.certificate) {
      const presented = presentedCertificate(this.opts.certificateSource, {
        sourceCertificate: req.peerCertificate,
        headers: req.headers,
      });
      if (!presented.ok) return { ok: false, reason: presented.reason };
      const mismatch = checkCertificateBinding(presented.certificate, plan.certificate.x5tS256);
      if (mismatch) return { ok: false, reason: mismatch.reason };
    }

    let responseHeaders: HeaderSet[] | undefined;
    if (plan.dpop) {
      const dpop = this.opts.dpop;
      // Unreachable: the DPoP scheme is a credential only when credentials.dpop is configured.
      if (!dpop) return { ok: false, reason: 'dpop_token_not_bound' };
      const nowMs = this.opts.now();
      const verified = await verifyDpopProof(
        {
          proof: req.headers['dpop'],
          method: req.method,
          htu: requestHtu({ scheme: req.scheme ?? '', authority: req.host, path: req.rawPath }, dpop.origins),
          accessToken: input.token,
          cnfJkt: plan.dpop.jkt,
          nowMs,
        },
        dpop.policy,
      );
      if (!verified.ok) {
        const nonce = dpop.nonces && 'nonce' in POP_REASONS[verified.reason];
        return {
          ok: false,
          reason: verified.reason,
          ...(nonce ? { responseHeaders: [{ name: 'dpop-nonce', value: dpop.nonces!.current(nowMs) }] } : {}),
        };
      }
      // Last: a proof that fails any other check never takes a place in the replay cache.
      const replayed = await checkDpopReplay(dpop.replay, verified);
      if (replayed) return { ok: false, reason: replayed.reason };
      // A nonce from the previous window: the client gets the current one (RFC 9449, §8.2).
      if (verified.renewNonce && dpop.nonces)
        responseHeaders = [{ name: 'dpop-nonce', value: dpop.nonces.current(nowMs) }];
    }
    return { ok: true, bound: plan.bound === 'none' ? undefined : plan.bound, responseHeaders };
  }
}
