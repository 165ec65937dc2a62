/** API errors: every failure leaves the server as JSON `{error, detail}` with its status code. */

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503 | 507;

/** An error whose message is safe to show to the client, with the status that fits it. */
export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly error: string,
    readonly detail?: string,
  ) {
    super(detail ? `${error}: ${detail}` : error);
  }
}

export const badRequest = (detail: string) => new HttpError(400, 'bad request', detail);
export const notFound = (what: string, id: string) => new HttpError(404, `unknown ${what}`, id);

/** A failure to write to the data folder: the server's fault, said without its paths. */
export function storageError(what: string, e: NodeJS.ErrnoException): HttpError {
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new HttpError(507, 'insufficient storage', `no space left to store ${what}`);
  return new HttpError(500, 'storage failed', `could not store ${what} (${e.code ?? e.message})`);
}
