import { describe, expect, it } from 'vitest';
import {
  authorizationHeader,
  BASE_SIGNED_HEADERS,
  canonicalHeaders,
  canonicalQueryString,
  canonicalRequest,
  canonicalUri,
  EMPTY_BODY_SHA256,
  encodePath,
  encodeRfc3986,
  formatXDate,
  hmacSha256Hex,
  sha256Hex,
  signedHeadersList,
  signRequest,
  stringToSign,
} from '../../src/koodrive/signer';

// Known-answer vectors from the documented KooDrive signing algorithm.
const KOODRIVE_SECRET = 'example-app-secret-not-real';
const KOODRIVE_HEADERS = {
  host: 'intl.myhuaweicloud-koodrive.com',
  'x-date': '20240909T033325Z',
  'x-user-id': '1505084218764547200',
};
const LOCK_PATH = '/koodrive/ose/v1/backup/lock';

describe('known-answer vectors', () => {
  it('reproduces the Huawei API Gateway vector by composing the shared steps with its own StringToSign', () => {
    const canonical = canonicalRequest({
      method: 'get',
      path: '/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs',
      query: [
        ['marker', '13551d6b-755d-4757-b956-536f674975c0'],
        ['limit', '2'],
      ],
      headers: {
        'Content-Type': 'application/json',
        Host: 'service.region.example.com',
        'X-Sdk-Date': '20191115T033655Z',
      },
      signedHeaders: ['X-Sdk-Date', 'host', 'content-type'],
    });
    expect(canonical).toBe(
      [
        'GET',
        '/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs/',
        'limit=2&marker=13551d6b-755d-4757-b956-536f674975c0',
        'content-type:application/json\nhost:service.region.example.com\nx-sdk-date:20191115T033655Z\n',
        'content-type;host;x-sdk-date',
        EMPTY_BODY_SHA256,
      ].join('\n'),
    );
    const hash = sha256Hex(canonical);
    expect(hash).toBe('b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a');
    const apigStringToSign = `SDK-HMAC-SHA256\n20191115T033655Z\n${hash}`;
    expect(hmacSha256Hex('MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc', apigStringToSign)).toBe(
      '7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe',
    );
  });

  it('reproduces the KooDrive release vector', () => {
    const signed = signRequest(
      { method: 'DELETE', path: LOCK_PATH, headers: KOODRIVE_HEADERS, signedHeaders: BASE_SIGNED_HEADERS },
      { appId: 'my-app', appSecret: KOODRIVE_SECRET },
    );
    expect(signed.canonicalRequest).toBe(
      [
        'DELETE',
        '/koodrive/ose/v1/backup/lock/',
        '',
        'host:intl.myhuaweicloud-koodrive.com\nx-date:20240909T033325Z\nx-user-id:1505084218764547200\n',
        'host;x-date;x-user-id',
        EMPTY_BODY_SHA256,
      ].join('\n'),
    );
    expect(sha256Hex(signed.canonicalRequest)).toBe(
      '2e6051a30a089ea80b36c4b5b9564597af9dc755746a9aa506b81eb59af6d141',
    );
    expect(signed.stringToSign).toBe(
      'HMAC-SHA256\n2e6051a30a089ea80b36c4b5b9564597af9dc755746a9aa506b81eb59af6d141',
    );
    expect(signed.signature).toBe('3ed3c2eb2125a424fa1c3f237e22cdea4a2d8a3409ba10e2c58ee8072fa9540d');
    expect(signed.authorization).toBe(
      'HMAC-SHA256 AppId=my-app,SignedHeaders=host;x-date;x-user-id,Signature=3ed3c2eb2125a424fa1c3f237e22cdea4a2d8a3409ba10e2c58ee8072fa9540d',
    );
  });

  it('reproduces the KooDrive create vector, whose body hash is signed', () => {
    const body = '{"moduleCode":"102"}';
    expect(sha256Hex(body)).toBe('134be0b02487a71a3500523797fd6c313cf893d7a8714c0eb362f6e3dc0defc0');
    const signed = signRequest(
      {
        method: 'POST',
        path: LOCK_PATH,
        headers: KOODRIVE_HEADERS,
        signedHeaders: BASE_SIGNED_HEADERS,
        body,
      },
      { appId: 'my-app', appSecret: KOODRIVE_SECRET },
    );
    expect(
      signed.canonicalRequest.endsWith('\n134be0b02487a71a3500523797fd6c313cf893d7a8714c0eb362f6e3dc0defc0'),
    ).toBe(true);
    expect(signed.signature).toBe('f9f58594a451c13f35c273c38b6b008a136cfb6cc94bacbb16103e388aa128cc');
    // The same bytes as a Uint8Array sign the same.
    const fromBytes = signRequest(
      {
        method: 'POST',
        path: LOCK_PATH,
        headers: KOODRIVE_HEADERS,
        signedHeaders: BASE_SIGNED_HEADERS,
        body: Buffer.from(body),
      },
      { appId: 'my-app', appSecret: KOODRIVE_SECRET },
    );
    expect(fromBytes.signature).toBe(signed.signature);
  });

  it('hashes the empty body to the documented constant', () => {
    expect(sha256Hex('')).toBe(EMPTY_BODY_SHA256);
  });
});

describe('StringToSign', () => {
  it('has two lines by default and puts the X-Date in between with the date-line option', () => {
    expect(stringToSign('abc')).toBe('HMAC-SHA256\nabc');
    expect(stringToSign('abc', '20240909T033325Z')).toBe('HMAC-SHA256\n20240909T033325Z\nabc');
  });

  it('signs the trimmed X-Date line when dateLineInStringToSign is set, giving another signature', () => {
    const withDateLine = signRequest(
      {
        method: 'DELETE',
        path: LOCK_PATH,
        headers: { ...KOODRIVE_HEADERS, 'x-date': ' 20240909T033325Z ' },
        signedHeaders: BASE_SIGNED_HEADERS,
      },
      { appId: 'a', appSecret: KOODRIVE_SECRET, dateLineInStringToSign: true },
    );
    const hash = sha256Hex(withDateLine.canonicalRequest);
    expect(withDateLine.stringToSign).toBe(`HMAC-SHA256\n20240909T033325Z\n${hash}`);
    expect(withDateLine.signature).toBe(hmacSha256Hex(KOODRIVE_SECRET, withDateLine.stringToSign));
    expect(withDateLine.signature).not.toBe(
      '3ed3c2eb2125a424fa1c3f237e22cdea4a2d8a3409ba10e2c58ee8072fa9540d',
    );
  });
});

describe('canonical URI', () => {
  it('appends a slash, once', () => {
    expect(canonicalUri('/koodrive/ose/v1/backup/lock')).toBe('/koodrive/ose/v1/backup/lock/');
    expect(canonicalUri('/a/b/')).toBe('/a/b/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('')).toBe('/');
  });

  it('encodes each segment as UTF-8 with RFC 3986 rules, keeping the slashes', () => {
    expect(canonicalUri('/v1/bücher/a b')).toBe('/v1/b%C3%BCcher/a%20b/');
    expect(canonicalUri("/x/(it's)*!~._-")).toBe('/x/%28it%27s%29%2A%21~._-/');
    expect(encodePath('/v1/bücher')).toBe('/v1/b%C3%BCcher');
  });
});

describe('canonical query string', () => {
  it('is empty without a query', () => {
    expect(canonicalQueryString()).toBe('');
    expect(canonicalQueryString([])).toBe('');
  });

  it('sorts by name, then value, and encodes reserved characters as upper-case %XY', () => {
    expect(
      canonicalQueryString([
        ['b', 'x y'],
        ['a', "it's/ok?&=+"],
        ['b', 'a*b'],
        ['é', '~'],
      ]),
    ).toBe('a=it%27s%2Fok%3F%26%3D%2B&b=a%2Ab&b=x%20y&%C3%A9=~');
  });

  it('sorts by the decoded name in code-unit order (uppercase before lowercase)', () => {
    expect(
      canonicalQueryString([
        ['a', '1'],
        ['B', '2'],
        ['_', '3'],
      ]),
    ).toBe('B=2&_=3&a=1');
  });

  it('keeps unreserved characters and encodes the rest', () => {
    expect(encodeRfc3986('AZaz09-_.~')).toBe('AZaz09-_.~');
    expect(encodeRfc3986("!*'() :/@")).toBe('%21%2A%27%28%29%20%3A%2F%40');
  });
});

describe('canonical and signed headers', () => {
  it('lower-cases names, trims values, sorts and ends with a newline', () => {
    expect(
      canonicalHeaders({ 'X-User-Id': '  42 ', Host: 'h.example:8443', 'X-Date': '\t20240909T033325Z' }, [
        'x-user-id',
        'Host',
        'X-DATE',
      ]),
    ).toBe('host:h.example:8443\nx-date:20240909T033325Z\nx-user-id:42\n');
  });

  it('lists signed header names lower case, sorted, unique, joined by semicolons', () => {
    expect(signedHeadersList(['X-User-Id', 'x-backup-lock-id', 'host', 'X-Date', 'x-date'])).toBe(
      'host;x-backup-lock-id;x-date;x-user-id',
    );
  });

  it('refuses to sign a header the request does not carry', () => {
    expect(() => canonicalHeaders({ host: 'h' }, ['host', 'x-date'])).toThrow(/x-date/);
  });

  it('formats the Authorization header without spaces after the commas', () => {
    expect(authorizationHeader('id', 'host;x-date;x-user-id', 'ff')).toBe(
      'HMAC-SHA256 AppId=id,SignedHeaders=host;x-date;x-user-id,Signature=ff',
    );
  });
});

describe('formatXDate', () => {
  it('formats UTC as yyyyMMddTHHmmssZ and drops milliseconds', () => {
    expect(formatXDate(new Date('2025-11-03T07:01:40.999Z'))).toBe('20251103T070140Z');
    expect(formatXDate(new Date(Date.UTC(2024, 0, 5, 3, 4, 5)))).toBe('20240105T030405Z');
  });
});

describe('signer edges', () => {
  it('signs a path given without its leading slash as the same canonical URI', () => {
    expect(canonicalUri('koodrive/ose/v1/backup/lock')).toBe('/koodrive/ose/v1/backup/lock/');
    expect(canonicalUri('/koodrive/ose/v1/backup/lock')).toBe('/koodrive/ose/v1/backup/lock/');
  });

  it('refuses to put a date line into the StringToSign of a request without X-Date', () => {
    expect(() =>
      signRequest(
        { method: 'DELETE', path: LOCK_PATH, headers: { host: 'h' }, signedHeaders: ['host'] },
        { appId: 'a', appSecret: 's', dateLineInStringToSign: true },
      ),
    ).toThrow(/^x-date header is missing$/);
  });
});
