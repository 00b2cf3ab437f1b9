// A small typed client over the documents graphql-codegen writes to ./api (see docs/clients.md).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createClient, type Client } from "graphql-ws";

export type ErrorCode =
  | "BAD_USER_INPUT"
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "STRATEGY_ERROR"
  | "SERVICE_UNAVAILABLE"
  | "INTERNAL";

export interface ApiErrorEntry {
  message: string;
  path?: (string | number)[];
  extensions: { code: ErrorCode; retryAfterSeconds?: number; [key: string]: unknown };
}

export class ApiError extends Error {
  constructor(readonly errors: ApiErrorEntry[]) {
    super(errors.map((e) => e.message).join("; "));
  }
  get code(): ErrorCode {
    return this.errors[0].extensions.code;
  }
}

/** POSTs one operation to `url` (e.g. "http://127.0.0.1:8000/graphql"); errors throw an ApiError. */
export async function request<TResult, TVariables>(
  url: string,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
  token?: string,
): Promise<TResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as { data?: TResult | null; errors?: ApiErrorEntry[] };
  if (body.errors?.length) throw new ApiError(body.errors);
  return body.data as TResult;
}

/**
 * A graphql-transport-ws connection for subscriptions (url: "ws://host:port/graphql"). Browsers
 * cannot set WebSocket headers, so the token travels in connection_init's payload. Outside a
 * browser, pass a WebSocket implementation (e.g. the `ws` package's) unless the runtime has one.
 */
export function subscriptionClient(url: string, token: string, webSocketImpl?: unknown): Client {
  return createClient({
    url,
    connectionParams: { Authorization: `Bearer ${token}` },
    webSocketImpl,
    retryAttempts: 0,
  });
}

/** Every event of one subscription, in order; an error ends it with an ApiError. */
export async function* subscribe<TResult, TVariables>(
  client: Client,
  document: TypedDocumentNode<TResult, TVariables>,
  variables: TVariables,
): AsyncGenerator<TResult> {
  const events = client.iterate<TResult>({
    query: print(document),
    variables: variables as Record<string, unknown>,
  });
  try {
    for await (const event of events) {
      if (event.errors?.length) throw new ApiError(event.errors as unknown as ApiErrorEntry[]);
      yield event.data as TResult;
    }
  } catch (error) {
    // graphql-ws throws the server's `error` message payload (a list of errors) as is.
    if (Array.isArray(error)) throw new ApiError(error as ApiErrorEntry[]);
    throw error;
  }
}
