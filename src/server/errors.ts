/** API errors: every failure leaves the server as JSON `{error, detail}` with its status code. */

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

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
