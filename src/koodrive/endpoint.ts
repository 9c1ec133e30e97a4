/**
 * The transport rule for the KooDrive endpoint: https://, except plain http:// to a loopback address (the local
 * stack, tests). The secret's parser and the client apply the same rule, from here.
 */
import { isIPv4 } from 'node:net';

/** Loopback per the transport rule: 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/** True when `url` is https://, or http:// to a loopback address. */
export function isAllowedEndpoint(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/** The endpoint as a URL, or why it is refused (an origin only; https only, plain http to loopback). */
export function checkEndpoint(endpoint: string): URL | string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return 'the KooDrive endpoint is not a valid URL';
  }
  if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) {
    return 'the KooDrive endpoint must be an origin (https://host[:port]) without path, query or credentials';
  }
  if (isAllowedEndpoint(url)) return url;
  if (url.protocol === 'http:') {
    return `refusing plain http:// to the non-loopback host ${url.hostname}: the KooDrive endpoint must use https://`;
  }
  return `unsupported endpoint scheme ${url.protocol}: the KooDrive endpoint must use https://`;
}
