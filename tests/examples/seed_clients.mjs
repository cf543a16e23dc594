// The client code of the seeds' conventions, run with Node 18+ (global fetch) against an
// example app: `node seed_clients.mjs BASE_URL`. tests/examples/test_seed_clients.py runs it.
//
// The three functions are copied verbatim from shared/conventions/, with only their
// placeholders filled in: bkend's URL and '{pk_publishable_key}' in refreshAccessToken,
// and a `sleep` for DreamFactory's fetchWithRetry, which uses one without defining it.
// Each is wrapped in a block of its own, as both fetchWithRetry snippets share one name.
// Prints one JSON report; exits 0 when every step ended in success.

const BASE = process.argv[2];
const KEY = 'pk_demo';

// Every status the snippets' fetch calls saw, to show that a 429 was met and waited out.
const realFetch = globalThis.fetch;
let seen = [];
globalThis.fetch = async (url, options) => {
  const response = await realFetch(url, options);
  seen.push(response.status);
  return response;
};

// -- bkend-error-codes.md, "Refreshing an Access Token" --------------------------------------
async function refreshAccessToken(refreshToken) {
  const response = await fetch(`${BASE}/api/v2/auth/refresh`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-API-Key': KEY,
    },
    body: JSON.stringify({ refreshToken }),
  });

  if (!response.ok) {
    // Refresh Token has also expired — re-login required
    throw new Error('Re-login is required');
  }

  const { accessToken } = await response.json();
  return accessToken;
}

// -- bkend-error-codes.md, "Retry Handling" ----------------------------------------------------
const bkend = (() => {
  async function fetchWithRetry(url, options, maxRetries = 3) {
    for (let i = 0; i < maxRetries; i++) {
      const response = await fetch(url, options);

      if (response.status === 429) {
        const retryAfter = response.headers.get('Retry-After');
        const delay = retryAfter ? parseInt(retryAfter) * 1000 : (i + 1) * 2000;
        await new Promise(resolve => setTimeout(resolve, delay));
        continue;
      }

      return response;
    }
    throw new Error('Maximum retry count exceeded');
  }
  return { fetchWithRetry };
})();

// -- dreamfactory-error-codes.md, "2. Implement Retry Logic" ------------------------------------
const dreamfactory = (() => {
  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
  async function fetchWithRetry(url, options, maxRetries = 3) {
    for (let i = 0; i < maxRetries; i++) {
      const response = await fetch(url, options);
      if (response.status === 429) {
        const retryAfter = response.headers.get('Retry-After') || 60;
        await sleep(retryAfter * 1000);
        continue;
      }
      if (response.status >= 500) {
        await sleep(Math.pow(2, i) * 1000);
        continue;
      }
      return response;
    }
    throw new Error('Max retries exceeded');
  }
  return { fetchWithRetry };
})();

// -- the walk ----------------------------------------------------------------------------------
const report = {};

const login = await realFetch(`${BASE}/api/v2/user/session`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'X-API-Key': KEY },
  body: JSON.stringify({ email: 'ada@example.com', password: 'lovelace' }),
});
const { refresh_token } = await login.json();

const accessToken = await refreshAccessToken(refresh_token);
const profile = await realFetch(`${BASE}/api/v2/user/profile`, {
  headers: { 'X-API-Key': KEY, Authorization: `Bearer ${accessToken}` },
});
report.refreshAccessToken = { profile: profile.status, user: (await profile.json()).email };
try {
  await refreshAccessToken('not-a-refresh-token');
  report.unknownRefreshToken = 'accepted';
} catch (error) {
  report.unknownRefreshToken = error.message;
}

const email = {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'X-API-Key': KEY },
  body: JSON.stringify({ to: 'grace@example.com', subject: 'Hi' }),
};
for (const [name, snippet] of Object.entries({ bkend, dreamfactory })) {
  seen = [];
  // One email per 2 seconds: emails in a row until one has met a 429 and waited it out.
  const answers = [];
  while (answers.length < 5 && !seen.includes(429)) {
    const response = await snippet.fetchWithRetry(`${BASE}/api/v2/email`, email);
    answers.push([response.status, await response.json()]);
  }
  report[`fetchWithRetry (${name})`] = { answers, seen };
}

console.log(JSON.stringify(report));
const ok =
  report.refreshAccessToken.profile === 200 &&
  report.unknownRefreshToken === 'Re-login is required' &&
  ['bkend', 'dreamfactory'].every(name => {
    const { answers, seen } = report[`fetchWithRetry (${name})`];
    return answers.every(([status]) => status === 202) && seen.includes(429);
  });
process.exit(ok ? 0 : 1);
