// URLs for logs, /readyz and error messages: what an operator needs to find the target (scheme,
// host, port, path), never a secret. A URL's userinfo is where clients take passwords from
// (`redis://:password@host`, `https://user:password@idp`), and ioredis reads more options, a
// password among them, from the query (`redis://host?password=…`).
//
// The URL is parsed the way the clients parse it (WHATWG URL: ioredis 5 and Node's http(s) both
// use it), so the host printed is the host they connect to, whatever the userinfo holds: the
// userinfo ends at the LAST `@` before the host, and an `@` inside a password stays in it. The old
// redaction matched the first `@` and printed the rest of such a password as the host.
//
// Nothing of the userinfo is printed, not even the user name (a user name can be a secret too:
// some providers put an API token there); `***@` says only that there is one. Query parameters
// keep their names, never their values.

/**
 * The URL without any part of its userinfo and without query values. An unparseable URL prints as a
 * placeholder, not as itself.
 */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '(unparseable URL)';
  }
  const auth = u.username !== '' || u.password !== '' ? '***@' : '';
  const names = [...new Set(u.searchParams.keys())].map((k) => `${encodeURIComponent(k)}=***`);
  const path = u.pathname === '/' ? '' : u.pathname;
  return `${u.protocol}//${auth}${u.host}${path}${names.length ? `?${names.join('&')}` : ''}`;
}
