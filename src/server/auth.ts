/** Bearer-token checks shared by the HTTP routes and the WebSocket upgrade, slowed down for guessers. */
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';

/**
 * Constant-time comparison. Both sides are hashed first so that neither the token's length nor
 * the position of the first differing byte leaks through timing.
 */
export function tokenMatches(given: string | undefined | null, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/**
 * The token from `Authorization: Bearer <t>`; else, when `url` is given, from its `token` query
 * parameter. Only the WebSocket upgrade passes the URL: a browser cannot set headers there, while
 * on plain HTTP a token in the URL would end up in histories, proxies and logs.
 */
export function presentedToken(authorization: string | undefined, url?: URL): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (m) return m[1]!.trim();
  return url?.searchParams.get('token') ?? undefined;
}

export interface AuthGateOptions {
  /** The token every request must present; undefined: the server is open. */
  token?: string;
  /** Failed attempts one client may make within `windowMs`; after that it is answered 429 until the window ends. */
  maxFailures?: number;
  windowMs?: number;
  /** Clients remembered at once; the oldest are forgotten first. */
  maxClients?: number;
}

export type AuthResult = { ok: true } | { ok: false; status: 401 } | { ok: false; status: 429; retryAfterSeconds: number };

export interface AuthGate {
  /** Whether a token is required at all. */
  readonly required: boolean;
  /** Checks the token presented by the client at `address` (its socket's remote address). */
  check(address: string | undefined, presented: string | undefined): AuthResult;
}

const DEFAULTS = { maxFailures: 10, windowMs: 60_000, maxClients: 10_000 };

/** One key per client: an IPv4 address, or the /64 of an IPv6 one (a host usually holds a whole /64). */
function clientKey(address: string | undefined): string {
  if (!address) return '?';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (v4 || net.isIPv4(address)) return v4 ?? address;
  if (!net.isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/**
 * @example
 * const auth = createAuthGate({ token: settings.token });
 * const result = auth.check(socket.remoteAddress, presentedToken(req.headers.authorization));
 * if (!result.ok) answer(result.status); // 401, or 429 after 10 failures in a minute
 */
export function createAuthGate(options: AuthGateOptions = {}): AuthGate {
  const { token, maxFailures, windowMs, maxClients } = { ...DEFAULTS, ...options };
  const failures = new Map<string, { count: number; since: number }>();

  return {
    required: token !== undefined,
    check(address, presented) {
      if (token === undefined) return { ok: true };
      const key = clientKey(address);
      const now = Date.now();
      let entry = failures.get(key);
      if (entry && now - entry.since >= windowMs) {
        failures.delete(key);
        entry = undefined;
      }
      // Over the limit: not even compared, so guessing costs a window per `maxFailures` tries.
      if (entry && entry.count >= maxFailures) {
        return { ok: false, status: 429, retryAfterSeconds: Math.ceil((entry.since + windowMs - now) / 1000) };
      }
      if (tokenMatches(presented, token)) {
        failures.delete(key);
        return { ok: true };
      }
      if (entry) entry.count++;
      else {
        failures.set(key, { count: 1, since: now });
        if (failures.size > maxClients) failures.delete(failures.keys().next().value!);
      }
      return { ok: false, status: 401 };
    },
  };
}
