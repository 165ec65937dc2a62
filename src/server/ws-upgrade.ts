/**
 * Whether an HTTP upgrade may become a WebSocket: Host and Origin (security.ts), the path, and
 * the token; refusals are answered on the raw socket.
 *
 * @example
 *   const refused = upgradeRefusal(req, { path: '/ws', auth, vetUpgrade });
 *   if (refused) return refuseUpgrade(socket, refused);
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { presentedToken, type AuthGate } from './auth.js';
import type { Refusal } from './security.js';

export interface UpgradeRefusal {
  status: 401 | 403 | 404 | 421 | 429;
  error: string;
  retryAfterSeconds?: number;
}

export interface UpgradeChecks {
  path: string;
  auth: AuthGate;
  /** Host and Origin checks (security.ts): why an upgrade is refused, or undefined. */
  vetUpgrade?: (req: IncomingMessage) => Refusal | undefined;
}

const STATUS_TEXT = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 421: 'Misdirected Request', 429: 'Too Many Requests' };

/** Why `req` may not upgrade (421, 403, 404, 401, then 429 for a client that keeps guessing), or undefined. */
export function upgradeRefusal(req: IncomingMessage, { path, auth, vetUpgrade }: UpgradeChecks): UpgradeRefusal | undefined {
  const refused = vetUpgrade?.(req);
  if (refused) return { status: refused.status, error: refused.error };
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname !== path) return { status: 404, error: 'unknown WebSocket path' };
  const allowed = auth.check(req.socket.remoteAddress, presentedToken(req.headers.authorization, url));
  if (allowed.ok) return undefined;
  if (allowed.status === 429) return { status: 429, error: 'too many failed attempts', retryAfterSeconds: allowed.retryAfterSeconds };
  return { status: 401, error: 'missing or bad token' };
}

/** Answers a refused upgrade and closes the socket once the answer is written. */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  const body = JSON.stringify({ error: refusal.error });
  const retry = refusal.retryAfterSeconds === undefined ? '' : `Retry-After: ${refusal.retryAfterSeconds}\r\n`;
  // Destroyed once written: a client that never closes its side does not keep the socket.
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
