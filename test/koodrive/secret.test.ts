import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors';
import { parseSecret } from '../../src/koodrive/secret';

const APP_SECRET = 'very-secret-app-secret-value';

describe('parseSecret', () => {
  const app = { endpoint: 'https://intl.myhuaweicloud-koodrive.com', appId: 'app-1', appSecret: APP_SECRET };

  it('selects app authentication and the documented protocol defaults', () => {
    expect(parseSecret(JSON.stringify({ ...app, defaultUserId: '42' }), 's')).toEqual({
      endpoint: 'https://intl.myhuaweicloud-koodrive.com',
      auth: { mode: 'app', appId: 'app-1', appSecret: APP_SECRET },
      defaultUserId: '42',
      protocol: {
        extraSignedHeaders: [],
        dateLineInStringToSign: false,
        tokenPrefix: 'Bearer ',
        alreadyReleasedCodes: ['13000309'],
      },
    });
  });

  it('selects token authentication when only accessToken is given', () => {
    const settings = parseSecret(
      JSON.stringify({ endpoint: 'http://127.0.0.1:9000', accessToken: 'tok' }),
      's',
    );
    expect(settings.auth).toEqual({ mode: 'token', accessToken: 'tok' });
    expect(settings.endpoint).toBe('http://127.0.0.1:9000');
  });

  it('takes the protocol knobs from the secret', () => {
    const settings = parseSecret(
      JSON.stringify({
        ...app,
        extraSignedHeaders: ['x-backup-lock-id'],
        alreadyReleasedCodes: [13000309, '1'],
      }),
      's',
    );
    expect(settings.protocol.extraSignedHeaders).toEqual(['x-backup-lock-id']);
    expect(settings.protocol.alreadyReleasedCodes).toEqual(['13000309', '1']);
  });

  it.each([
    [undefined, /no SecretString/],
    ['not json', /not JSON/],
    [JSON.stringify({ ...app, endpoint: 'http://intl.myhuaweicloud-koodrive.com' }), /must be https/],
    [JSON.stringify({ ...app, endpoint: 'https://host/path' }), /origin only/],
    [JSON.stringify({ endpoint: app.endpoint, appId: 'a' }), /appId and appSecret go together/],
    [JSON.stringify({ endpoint: app.endpoint }), /credentials are missing/],
    [JSON.stringify({ ...app, appSecret: 12 }), /appSecret/],
    [JSON.stringify({ ...app, defaultUserId: 'has space' }), /defaultUserId has characters/],
  ])('refuses a bad secret with a message naming the field: %s', (raw, message) => {
    expect(() => parseSecret(raw, 'koodrive/dev')).toThrow(message);
  });

  it('never puts a secret value into its error', () => {
    const raw = JSON.stringify({
      endpoint: 'ftp://x',
      appId: APP_SECRET,
      appSecret: `${APP_SECRET} `,
      accessToken: 7,
    });
    expect(() => parseSecret(raw, 's')).toThrow(ConfigError);
    try {
      parseSecret(raw, 's');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(APP_SECRET);
    }
  });
});

describe('parseSecret: every rule, with the exact problem it names', () => {
  const app = { endpoint: 'https://intl.myhuaweicloud-koodrive.com', appId: 'app-1', appSecret: APP_SECRET };
  const problems = (raw: string | undefined): string[] => {
    try {
      parseSecret(raw, 'koodrive/dev');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/^secret koodrive\/dev is not usable: /);
      return (error as ConfigError).problems;
    }
    throw new Error('expected a ConfigError');
  };
  const withFields = (fields: Record<string, unknown>) => problems(JSON.stringify({ ...app, ...fields }));

  it('names the JSON type a field or the whole secret should have', () => {
    expect(problems('[]')).toEqual(['(root) must be of type object']);
    expect(problems('"text"')).toEqual(['(root) must be of type object']);
    expect(withFields({ endpoint: 5 })).toEqual(['endpoint must be of type string']);
    expect(withFields({ appSecret: 12 })).toEqual(['appSecret must be of type string']);
    expect(withFields({ dateLineInStringToSign: 'yes' })).toEqual([
      'dateLineInStringToSign must be of type boolean',
    ]);
    expect(withFields({ extraSignedHeaders: 'x-a' })).toEqual(['extraSignedHeaders must be of type array']);
  });

  it('names empty, too long, badly written and unknown-kind values, never the value', () => {
    expect(withFields({ appId: '' })).toEqual(['appId must not be empty']);
    expect(withFields({ defaultUserId: '' })).toEqual(['defaultUserId must not be empty']);
    expect(withFields({ defaultUserId: '9'.repeat(257) })).toEqual(['defaultUserId is too long']);
    expect(
      parseSecret(JSON.stringify({ ...app, defaultUserId: '9'.repeat(256) }), 's').defaultUserId,
    ).toHaveLength(256);
    expect(withFields({ extraSignedHeaders: ['x-a b'] })).toEqual([
      'extraSignedHeaders.0 has characters that are not allowed',
    ]);
    expect(withFields({ extraSignedHeaders: ['X-Upper'] })).toEqual([
      'extraSignedHeaders.0 has characters that are not allowed',
    ]);
    expect(withFields({ tokenPrefix: 'Bearer\n' })).toEqual([
      'tokenPrefix has characters that are not allowed',
    ]);
    expect(withFields({ appSecret: 'with space' })).toEqual([
      'appSecret has characters that are not allowed',
    ]);
    expect(withFields({ accessToken: 'tab\there' })).toEqual([
      'accessToken has characters that are not allowed',
    ]);
    expect(withFields({ alreadyReleasedCodes: [true] })).toEqual(['alreadyReleasedCodes.0 is not valid']);
  });

  it('names every endpoint rule the value breaks, at once with the other problems', () => {
    expect(problems(JSON.stringify({ endpoint: 'http://h.example/p', appId: 'a' }))).toEqual([
      'endpoint must be https:// (http:// only to a loopback address)',
      'endpoint must be an origin only, like https://host[:port]',
      'appId and appSecret go together: one of them is missing',
    ]);
    for (const endpoint of ['https://h.example/?a=1', 'https://user@h.example', 'https://h.example/api']) {
      expect(withFields({ endpoint }), endpoint).toEqual([
        'endpoint must be an origin only, like https://host[:port]',
      ]);
    }
    expect(withFields({ endpoint: 'h.example' })).toEqual(['endpoint is not a URL']);
    expect(withFields({ appId: undefined })).toEqual([
      'appId and appSecret go together: one of them is missing',
    ]);
  });

  it('keeps the origin only, normalised, and prefers app authentication when both kinds are given', () => {
    expect(
      parseSecret(
        JSON.stringify({
          ...app,
          endpoint: 'https://INTL.example:443',
          accessToken: 'tok',
          tokenPrefix: 'Bearer+',
          dateLineInStringToSign: true,
        }),
        's',
      ),
    ).toStrictEqual({
      endpoint: 'https://intl.example',
      auth: { mode: 'app', appId: 'app-1', appSecret: APP_SECRET },
      protocol: {
        extraSignedHeaders: [],
        dateLineInStringToSign: true,
        tokenPrefix: 'Bearer+',
        alreadyReleasedCodes: ['13000309'],
      },
    });
  });

  it('accepts an empty token prefix (the bare token of the general docs page)', () => {
    expect(parseSecret(JSON.stringify({ ...app, tokenPrefix: '' }), 's').protocol.tokenPrefix).toBe('');
  });
});
