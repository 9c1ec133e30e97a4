/**
 * KooDrive app-authentication signing (the documented KooDrive signing algorithm): pure functions, no I/O, no clock.
 *
 * CanonicalRequest = method \n canonicalUri \n canonicalQuery \n canonicalHeaders \n signedHeaders \n bodyHash
 * StringToSign     = "HMAC-SHA256" \n [x-date \n] hex(sha256(CanonicalRequest))
 * Signature        = hex(hmac-sha256(AppSecret, StringToSign))
 *
 * Each step is exported on its own so the known-answer vectors (including Huawei's API-gateway vector,
 * whose StringToSign differs) can be checked step by step.
 */
import { createHash, createHmac } from 'node:crypto';

export const ALGORITHM = 'HMAC-SHA256';

/** The headers every KooDrive call signs, in canonical (sorted, lower-case) form. */
export const BASE_SIGNED_HEADERS = ['host', 'x-date', 'x-user-id'] as const;

/** sha256('') in hex: the body hash of a request without a body. */
export const EMPTY_BODY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * RFC 3986 percent-encoding of UTF-8 text: `A-Z a-z 0-9 - _ . ~` stay, everything else becomes `%XY`
 * (upper-case hex). encodeURIComponent already does this except for `! ' ( ) *`, which it leaves alone.
 */
export function encodeRfc3986(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * Encodes each segment of a decoded path (`/v1/bücher` → `/v1/b%C3%BCcher`). The client sends this
 * form; canonicalUri() signs it with a trailing slash.
 */
export function encodePath(path: string): string {
  return path.split('/').map(encodeRfc3986).join('/');
}

let lastUri: { path: string; uri: string } | undefined;

/** The canonical URI: the encoded path with a `/` appended unless it ends in one already. */
export function canonicalUri(path: string): string {
  // Every KooDrive call signs the same path: encode it once.
  if (lastUri?.path !== path) {
    const encoded = encodePath(path.startsWith('/') ? path : `/${path}`);
    lastUri = { path, uri: encoded.endsWith('/') ? encoded : `${encoded}/` };
  }
  return lastUri.uri;
}

/**
 * The canonical query string from decoded name/value pairs: `enc(name)=enc(value)` sorted by name
 * (then by value for repeated names), joined by `&`; '' when there is no query. Sorting is by the
 * decoded names in code-unit order, as Huawei's reference signer sorts its query map's keys.
 */
export function canonicalQueryString(query: Iterable<readonly [string, string]> = []): string {
  return [...query]
    .sort(([n1, v1], [n2, v2]) => compare(n1, n2) || compare(v1, v2))
    .map(([name, value]) => `${encodeRfc3986(name)}=${encodeRfc3986(value)}`)
    .join('&');
}

/** Lower-case, deduplicated, sorted header names. */
export function normalizeHeaderNames(names: Iterable<string>): string[] {
  return [...new Set([...names].map((n) => n.toLowerCase()))].sort(compare);
}

/** The signed-headers list: `host;x-date;x-user-id`. */
export function signedHeadersList(names: Iterable<string>): string {
  return normalizeHeaderNames(names).join(';');
}

/**
 * The canonical headers block: `name:trim(value)\n` for each signed header, sorted by name (so it ends
 * with a newline). `headers` may use any case; every name in `signedNames` must be present.
 */
export function canonicalHeaders(
  headers: Readonly<Record<string, string>>,
  signedNames: Iterable<string>,
): string {
  return canonicalHeadersOf(headers, normalizeHeaderNames(signedNames));
}

/** canonicalHeaders() for names already normalized. */
function canonicalHeadersOf(headers: Readonly<Record<string, string>>, names: readonly string[]): string {
  let block = '';
  for (const name of names) {
    // The client names its headers in lower case; any other case is found by a scan.
    const value = Object.hasOwn(headers, name) ? headers[name] : headerValue(headers, name);
    if (value === undefined) throw new Error(`signed header "${name}" is not among the request headers`);
    block += `${name}:${value.trim()}\n`;
  }
  return block;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Lower-case hex HMAC-SHA256 of `data` keyed with the UTF-8 bytes of `key`. */
export function hmacSha256Hex(key: string, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export interface RequestToSign {
  method: string;
  /** Decoded path, without query (e.g. `/koodrive/ose/v1/backup/lock`). */
  path: string;
  /** Decoded query pairs; none by default. */
  query?: Iterable<readonly [string, string]>;
  /** The request headers; must include every signed header (at least host, x-date, x-user-id). */
  headers: Readonly<Record<string, string>>;
  /** Names of the headers to sign (any case). */
  signedHeaders: Iterable<string>;
  /** The exact body bytes sent; none by default. */
  body?: string | Uint8Array;
}

export function canonicalRequest(req: RequestToSign): string {
  return canonicalRequestOf(req, normalizeHeaderNames(req.signedHeaders));
}

function canonicalRequestOf(req: RequestToSign, signed: readonly string[]): string {
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQueryString(req.query),
    canonicalHeadersOf(req.headers, signed),
    signed.join(';'),
    req.body === undefined ? EMPTY_BODY_SHA256 : sha256Hex(req.body),
  ].join('\n');
}

/**
 * The KooDrive StringToSign: `HMAC-SHA256\n<hash>`, or `HMAC-SHA256\n<xDate>\n<hash>` when the
 * `dateLineInStringToSign` protocol option passes the X-Date value here.
 */
export function stringToSign(canonicalRequestHash: string, xDate?: string): string {
  return xDate === undefined
    ? `${ALGORITHM}\n${canonicalRequestHash}`
    : `${ALGORITHM}\n${xDate}\n${canonicalRequestHash}`;
}

export function authorizationHeader(appId: string, signedHeaders: string, signature: string): string {
  return `${ALGORITHM} AppId=${appId},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

export interface SignOptions {
  appId: string;
  appSecret: string;
  /** Put the X-Date value as a line of the StringToSign (protocol option; default false). */
  dateLineInStringToSign?: boolean;
}

export interface Signed {
  authorization: string;
  signature: string;
  signedHeaders: string;
  canonicalRequest: string;
  stringToSign: string;
}

/** Every step at once: what the client puts in the Authorization header. */
export function signRequest(req: RequestToSign, opts: SignOptions): Signed {
  const signed = normalizeHeaderNames(req.signedHeaders);
  const canonical = canonicalRequestOf(req, signed);
  const signedHeaders = signed.join(';');
  const xDate = opts.dateLineInStringToSign ? headerValue(req.headers, 'x-date')?.trim() : undefined;
  if (opts.dateLineInStringToSign && xDate === undefined) throw new Error('x-date header is missing');
  const sts = stringToSign(sha256Hex(canonical), xDate);
  const signature = hmacSha256Hex(opts.appSecret, sts);
  return {
    authorization: authorizationHeader(opts.appId, signedHeaders, signature),
    signature,
    signedHeaders,
    canonicalRequest: canonical,
    stringToSign: sts,
  };
}

let lastXDate: { second: number; text: string } | undefined;

/** `yyyyMMddTHHmmssZ` in UTC, e.g. 20251103T070140Z (milliseconds dropped, never rounded up). */
export function formatXDate(date: Date): string {
  // Many requests share a second: format each second once.
  const second = Math.floor(date.getTime() / 1000);
  if (lastXDate?.second !== second) {
    const text = date
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    lastXDate = { second, text };
  }
  return lastXDate.text;
}

function headerValue(headers: Readonly<Record<string, string>>, lowerName: string): string | undefined {
  return Object.entries(headers).find(([name]) => name.toLowerCase() === lowerName)?.[1];
}

/** Code-unit order, independent of locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
