// Request-derived log fields (docs/security.md, "Request-derived log fields"): validated or bounded,
// and nothing shaped like a credential. Over gRPC, with the server's own logger:
// test/contract/request-confusion.test.ts.
import { describe, expect, it } from 'vitest';
import { generateApiKey } from '../../src/credentials/api-key/format.ts';
import {
  logIdentityValue,
  logIp,
  logMethod,
  logPath,
  logRequestId,
  MAX_LOGGED_ID,
  MAX_LOGGED_PATH,
  REDACTED,
} from '../../src/runtime/log-fields.ts';

const key = generateApiKey('pcl');
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl';

describe('log fields', () => {
  it('method: a registered HTTP method, else _OTHER (a key put into the method is never logged)', () => {
    expect(['GET', 'POST', 'DELETE', 'PROPFIND', 'QUERY'].map(logMethod)).toEqual([
      'GET',
      'POST',
      'DELETE',
      'PROPFIND',
      'QUERY',
    ]);
    for (const m of [key, key.toUpperCase(), 'get', 'G ET', 'X'.repeat(10_000), 'BREW', '', 'GET\n'])
      expect(logMethod(m)).toBe('_OTHER');
  });

  it('source address: its canonical text when it is one IP address, else nothing', () => {
    expect(logIp('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(logIp('::ffff:10.0.0.1')).toBe('10.0.0.1');
    for (const ip of [key, 'garbage', '1.2.3.4, 5.6.7.8', '', undefined]) expect(logIp(ip)).toBeUndefined();
  });

  it('request id: at most 128 visible ASCII characters (others escaped); credential-shaped, [redacted]', () => {
    expect(logRequestId('0f4c2a1e-7b3d-4f9a-9c2e-000000000001', 'pcl', [])).toBe(
      '0f4c2a1e-7b3d-4f9a-9c2e-000000000001',
    );
    expect(logRequestId('req-1,req-2', 'pcl', [])).toBe('req-1,req-2');
    expect(logRequestId(undefined, 'pcl', [])).toBeUndefined();
    expect(logRequestId('id\nforged: line', 'pcl', [])).toBe('id%0Aforged:%20line');
    expect(logRequestId('a'.repeat(5000), 'pcl', [])).toBe('a'.repeat(MAX_LOGGED_ID) + '…');
    for (const id of [key, `req-${key}`, JWT, 'opaque-token-value-1234'])
      expect(logRequestId(id, 'pcl', ['opaque-token-value-1234'])).toBe(REDACTED);
  });

  it('path: as sent, bounded, credential-shaped segments replaced, no query', () => {
    expect(logPath('/v1/%6Frders/7?api_key=secret', 'pcl', [])).toBe('/v1/%6Frders/7');
    expect(logPath(`/v1/keys/${key}/x?y`, 'pcl', [])).toBe(`/v1/keys/${REDACTED}/x`);
    expect(logPath(`/v1/t/${JWT}`, 'pcl', [])).toBe(`/v1/t/${REDACTED}`);
    expect(logPath('/v1/raw\u0000\n\u00e9 x', 'pcl', [])).toBe('/v1/raw%00%0A%C3%A9%20x');
    const long = logPath('/' + 'a'.repeat(10_000), 'pcl', []);
    expect(long.length).toBe(MAX_LOGGED_PATH + 1);
    expect(logPath('/' + 'b'.repeat(10_000) + '\n', 'pcl', []).length).toBe(MAX_LOGGED_PATH + 1);
    expect(logPath('/\n'.repeat(1000), 'pcl', []).length).toBeLessThanOrEqual(3 * MAX_LOGGED_PATH + 1);
  });

  it('identity values: bounded, visible ASCII', () => {
    expect(logIdentityValue('partner-a')).toBe('partner-a');
    expect(logIdentityValue('a\r\nb')).toBe('a%0D%0Ab');
    expect(logIdentityValue('x'.repeat(5000))!.length).toBe(MAX_LOGGED_ID + 1);
  });
});
