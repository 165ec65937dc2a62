/** Bearer-token checks shared by the HTTP routes and the WebSocket upgrade. */
import { createHash, timingSafeEqual } from 'node:crypto';

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

/** The token from `Authorization: Bearer <t>`, else from the `token` query parameter. */
export function presentedToken(authorization: string | undefined, url: URL): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (m) return m[1]!.trim();
  return url.searchParams.get('token') ?? undefined;
}
