// One error shape for every route: an HTTP status and OpenAI's error body ({error: {message, type, param, code}}),
// so OpenAI clients show our messages, and a message that names the field at fault. Never a stack trace.
// ref: docs/server.md "Errors"

import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { RequestError } from '../pipeline/request.js';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'server_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string, param: string | null = null) => new ApiError(400, message, 'invalid_request_error', param);
export const notFound = (message: string) => new ApiError(404, message, 'not_found_error');

export function errorBody(type: ApiErrorType, message: string, param: string | null = null) {
  return { error: { message, type, param, code: null } };
}

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** A validation failure as "<where>/<field> <what>", with the field as `param`. */
function describeValidation(errors: readonly AjvError[], where: string): { message: string; param: string | null } {
  const e = errors[0];
  const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const named = (field: string) => (path ? `${path}.${field}` : field);
  if (e.keyword === 'additionalProperties') {
    const field = named(String(e.params.additionalProperty));
    return { message: `${where}/${field}: unknown field`, param: field };
  }
  if (e.keyword === 'required') {
    const field = named(String(e.params.missingProperty));
    return { message: `${where}/${field} is required`, param: field };
  }
  // A union (anyOf) fails with one error per branch: say what each branch wanted.
  const atPath = errors.filter((x) => x.instancePath === e.instancePath && x.keyword !== 'anyOf');
  const consts = atPath.filter((x) => x.keyword === 'const').map((x) => JSON.stringify(x.params.allowedValue));
  const wanted =
    consts.length === atPath.length
      ? `must be ${consts.length > 1 ? 'one of ' : ''}${consts.join(', ')}`
      : [...new Set(atPath.map((x) => (x.keyword === 'const' ? `must be ${JSON.stringify(x.params.allowedValue)}` : x.message ?? 'is invalid')))].join(' or ');
  return { message: `${where}${path ? `/${path}` : ''} ${wanted}`, param: path || null };
}

function send(reply: FastifyReply, status: number, type: ApiErrorType, message: string, param: string | null = null): FastifyReply {
  return reply.status(status).type('application/json').send(errorBody(type, message, param));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => send(reply, 404, 'not_found_error', `no route ${request.method} ${request.url.split('?')[0]}`));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ApiError) {
      for (const [k, v] of Object.entries(error.headers)) reply.header(k, v);
      return send(reply, error.status, error.type, error.message, error.param);
    }
    if (error instanceof RequestError) return send(reply, 400, 'invalid_request_error', error.message);
    if (error.validation) {
      const { message, param } = describeValidation(error.validation as AjvError[], error.validationContext ?? 'body');
      return send(reply, 400, 'invalid_request_error', message, param);
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return send(reply, 413, 'invalid_request_error', `request body is larger than the server's limit (${error.message.replace(/^.*?:\s*/, '')})`);
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return send(reply, 415, 'invalid_request_error', `send the body as application/json (got ${request.headers['content-type'] ?? 'no content type'})`);
    }
    if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return send(reply, 400, 'invalid_request_error', 'the request body is empty; send a JSON object');
    if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      return send(reply, 400, 'invalid_request_error', `the request body is not valid JSON: ${error.message}`);
    }
    if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, error.statusCode, 'invalid_request_error', error.message);
    }
    request.log.error({ err: error }, 'request failed');
    return send(reply, 500, 'server_error', `internal error: ${error.message}`);
  });
}
