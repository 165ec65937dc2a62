/**
 * Who may talk to the server, decided in one place for HTTP requests and WebSocket upgrades:
 *
 * - Host: only names the server is reached by. IP addresses and `localhost` with the server's
 *   port, plus configured names (`ARBEX_ALLOWED_HOSTS`, e.g. a reverse proxy's). Any other name is
 *   answered 421: a page that re-binds its own domain to this address (DNS rebinding) sends its
 *   own name, never an address, so it is refused.
 * - Origin: a state-changing request (POST, PUT, PATCH, DELETE) or a WebSocket upgrade that
 *   carries an Origin must come from the server's own origin (the one its Host names) or a
 *   configured one (`ARBEX_ALLOWED_ORIGINS`); others are answered 403. A browser attaches Origin
 *   to every such request, including a multipart form post that needs no preflight, so another
 *   site cannot create jobs or read predictions; clients that are not browsers send none.
 * - Every HTTP answer carries headers that keep the dashboard and the API out of other pages:
 *   a Content-Security-Policy (`default-src 'self'`, `frame-ancestors 'none'`), nosniff,
 *   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and a same-origin resource policy.
 *
 * And `checkExposure`: the server does not listen on a non-loopback address without a token
 * unless told so.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { MiddlewareHandler } from 'hono';

export interface SecurityOptions {
  /** The port the server listens on; asked for each request, since with port 0 it is known only once listening. */
  port: () => number;
  /** More Host names, `name` (any port) or `name:port`, e.g. `arbex.example.com`. */
  allowedHosts?: string[];
  /** More origins (`https://dashboard.example.com`) allowed to make state-changing requests and open WebSockets. */
  allowedOrigins?: string[];
}

export interface Refusal {
  status: 403 | 421;
  error: string;
  detail: string;
}

export interface Security {
  /** Host and Origin checks, then the security headers on whatever the route answers. */
  middleware: MiddlewareHandler;
  /** Why this request (an upgrade when `upgrade` is set) is refused, or undefined. The middleware uses it too. */
  refusal(request: { method: string; host?: string; origin?: string; upgrade?: boolean }): Refusal | undefined;
  /** `refusal` for a raw WebSocket upgrade request. */
  upgradeRefusal(req: IncomingMessage): Refusal | undefined;
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** `name` and port (undefined when absent) of a Host value; IPv6 stays in brackets. Undefined when malformed. */
function splitHost(value: string): { name: string; port?: number } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!m) return undefined;
  return { name: m[1]!.toLowerCase(), ...(m[2] !== undefined ? { port: Number(m[2]) } : {}) };
}

const isIpName = (name: string) => net.isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0;

function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new Error(`ARBEX_ALLOWED_ORIGINS: "${origin}" is not an origin (e.g. https://dashboard.example.com)`);
  }
}

/** Security headers for an answer; `host` (already checked) lets the page open its own WebSocket. */
function securityHeaders(host: string | undefined): Record<string, string> {
  const sockets = host ? ` ws://${host} wss://${host}` : '';
  return {
    'content-security-policy': `default-src 'self'; img-src 'self' blob:; connect-src 'self'${sockets}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-resource-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
  };
}

/**
 * @example
 * const security = createSecurity({ port: () => actualPort, allowedHosts: settings.allowedHosts, allowedOrigins: settings.allowedOrigins });
 * app.use('*', security.middleware);
 * const refused = security.upgradeRefusal(req); // in the 'upgrade' handler
 */
export function createSecurity(options: SecurityOptions): Security {
  const { port, allowedHosts = [], allowedOrigins = [] } = options;
  const extraHosts = allowedHosts.map((h) => {
    const parsed = splitHost(h);
    if (!parsed) throw new Error(`ARBEX_ALLOWED_HOSTS: "${h}" is not a host name (name or name:port)`);
    return parsed;
  });
  const extraOrigins = new Set(allowedOrigins.map(normaliseOrigin));

  const hostAllowed = (value: string | undefined): boolean => {
    const host = value === undefined ? undefined : splitHost(value);
    if (!host) return false;
    const own = port();
    // Browsers leave the port out when it is the scheme's default.
    const portMatches = (host.port ?? 80) === own || (host.port === undefined && own === 443);
    if ((host.name === 'localhost' || isIpName(host.name)) && portMatches) return true;
    return extraHosts.some((h) => h.name === host.name && (h.port === undefined || h.port === (host.port ?? 80)));
  };

  const originAllowed = (origin: string, host: string): boolean => {
    if (extraOrigins.has(origin)) return true;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // "null" (sandboxed frames, files) and anything malformed
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    // The server's own origin: the one its (already checked) Host names, with or without TLS in front.
    const own = splitHost(host);
    const theirs = splitHost(url.host);
    const defaultPort = url.protocol === 'https:' ? 443 : 80;
    return own !== undefined && theirs !== undefined && own.name === theirs.name && (own.port ?? defaultPort) === (theirs.port ?? defaultPort);
  };

  const refusal: Security['refusal'] = ({ method, host, origin, upgrade }) => {
    if (!hostAllowed(host)) {
      return { status: 421, error: 'misdirected request', detail: `this server does not answer to Host "${host ?? ''}" (ARBEX_ALLOWED_HOSTS adds names)` };
    }
    if (origin !== undefined && (upgrade || STATE_CHANGING.has(method.toUpperCase())) && !originAllowed(origin, host!)) {
      return { status: 403, error: 'forbidden origin', detail: `requests from origin "${origin}" are not allowed (ARBEX_ALLOWED_ORIGINS adds origins)` };
    }
    return undefined;
  };

  return {
    refusal,
    upgradeRefusal: (req) => refusal({ method: req.method ?? 'GET', host: req.headers.host, origin: req.headers.origin, upgrade: true }),
    middleware: async (c, next) => {
      const host = c.req.header('host');
      const refused = refusal({ method: c.req.method, host, origin: c.req.header('origin') });
      if (refused) return c.json({ error: refused.error, detail: refused.detail }, refused.status, securityHeaders(undefined));
      await next();
      for (const [k, v] of Object.entries(securityHeaders(host))) c.res.headers.set(k, v);
    },
  };
}

const isLoopback = (host: string): boolean => {
  const name = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (name === 'localhost') return true;
  const family = net.isIP(name);
  if (family === 4) return name.startsWith('127.');
  return family === 6 && (name === '::1' || /^::ffff:127\./.test(name));
};

/**
 * Throws when the server would listen on a non-loopback address without a token, unless
 * `insecureNoToken` says that is intended (`--insecure-no-token`): anyone who can reach the port
 * could then add streams, read every camera's predictions and frames, and upload videos.
 *
 * @example
 * checkExposure({ host: settings.host, token: settings.token, insecureNoToken: settings.insecureNoToken });
 */
export function checkExposure({ host, token, insecureNoToken = false }: { host: string; token?: string; insecureNoToken?: boolean }): void {
  if (token !== undefined || insecureNoToken || isLoopback(host)) return;
  throw new Error(
    `refusing to listen on ${host} without a token: anyone who can reach it could use every camera and the API. ` +
      'Set ARBEX_TOKEN, bind 127.0.0.1, or pass --insecure-no-token (ARBEX_INSECURE_NO_TOKEN=1) if this is really wanted.',
  );
}

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/**
 * The HTTP server's `clientError` handler: a malformed request is answered 400 (431, 408) when the
 * socket can still be written, and the socket is destroyed either way; a reset is only a close.
 *
 * @example
 * httpServer.on('clientError', answerClientError);
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  socket.on('error', () => socket.destroy());
  if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`, () => socket.destroy());
}
