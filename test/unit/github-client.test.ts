import { describe, expect, it } from 'vitest';
import { createGitHubClient } from '../../src/github/client.js';
import { silentLogger } from '../../src/output/logger.js';

describe('createGitHubClient token handling', () => {
  const make = (baseUrl: string, token?: string) => () => createGitHubClient({ baseUrl, ...(token ? { token } : {}), timeoutMs: 1000, log: silentLogger });

  it('refuses to send a token in clear text to a non-loopback host', () => {
    expect(make('http://ghe.example.com/api/v3', 'ghp_secret')).toThrow(/refusing to send GITHUB_TOKEN in clear text to http:\/\/ghe\.example\.com/);
  });

  it('allows https, loopback test servers, and http without a token', () => {
    expect(make('https://ghe.example.com/api/v3', 'ghp_secret')).not.toThrow();
    expect(make('http://127.0.0.1:8080', 'ghp_secret')).not.toThrow();
    expect(make('http://ghe.example.com/api/v3')).not.toThrow();
  });

  it('never puts the token in its message', () => {
    expect(make('http://ghe.example.com', 'ghp_secret')).toThrow(expect.not.objectContaining({ message: expect.stringContaining('ghp_secret') }));
  });
});
