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
