/**
 * Camera URLs carry credentials (`rtsp://admin:secret@cam/stream`, `http://cam/video.cgi?pwd=secret`).
 * Everything that leaves the server (API answers, error messages, WebSocket events, logs) passes
 * through `redact` first, so a password given once never comes back out.
 */

// scheme://userinfo@ : the userinfo runs up to the last "@" before the path, query or fragment.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@]*(?:@[^\s/?#@]*)*)@/gi;
// Query parameters that name a secret.
const SECRET_PARAM = /([?&;](?:password|passwd|pass|pwd|token|access_token|auth|key|apikey|api_key|secret|sig|signature)=)[^&;#\s]*/gi;

/**
 * Replaces the password of every URL in `text` with `***` (a user name without password, which
 * may be a token itself, becomes `***`), and the values of secret-looking query parameters.
 * Idempotent: redacting twice changes nothing more.
 *
 * @example
 * redact('could not connect to rtsp://admin:hunter2@10.0.0.5/live'); // '... rtsp://admin:***@10.0.0.5/live'
 * redact('http://cam/mjpg?user=admin&pwd=hunter2');                    // 'http://cam/mjpg?user=admin&pwd=***'
 */
export function redact(text: string): string {
  return text
    .replace(USERINFO, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      return `${scheme}${colon < 0 ? '***' : `${userinfo.slice(0, colon)}:***`}@`;
    })
    .replace(SECRET_PARAM, '$1***');
}
