// The server's REST API (docs/API.md §3) over fetch. Tokens travel only in the Authorization
// header, never in a URL. Errors become ApiError with the server's stable code.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** Everything but unreserved characters percent-encoded, as the Swift client does. */
export function segment(value) {
  return encodeURIComponent(String(value)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** JSON with sorted keys and absent optionals left out, as every SecureChat encoder writes it. */
export function canonicalJSON(value) {
  return JSON.stringify(value, (key, item) => {
    if (item && typeof item === 'object' && !Array.isArray(item) && !(item instanceof Uint8Array)) {
      const sorted = {};
      for (const name of Object.keys(item).sort()) if (item[name] !== undefined && item[name] !== null) sorted[name] = item[name];
      return sorted;
    }
    return item;
  });
}

export class ApiClient {
  /** `accessToken()` resolves to a valid access token (refreshing it first when needed). */
  constructor(baseURL, accessToken) {
    this.baseURL = baseURL.replace(/\/$/, '');
    this.accessToken = accessToken;
  }

  async request(method, path, { body, auth = true, raw = null, headers = {}, signal } = {}) {
    const request = { method, headers: { ...headers }, signal, cache: 'no-store', credentials: 'omit' };
    if (auth) request.headers.Authorization = `Bearer ${await this.accessToken()}`;
    if (raw !== null) {
      request.body = raw;
    } else if (body !== undefined) {
      request.headers['Content-Type'] = 'application/json';
      request.body = canonicalJSON(body);
    }
    let response;
    try {
      response = await fetch(this.baseURL + path, request);
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, 'network', 'the server cannot be reached');
    }
    if (response.status === 204) return null;
    const type = response.headers.get('Content-Type') ?? '';
    if (!response.ok) {
      let code = 'http_' + response.status;
      let message = `the server answered ${response.status}`;
      if (type.includes('json')) {
        try {
          const failure = (await response.json()).error;
          code = failure.code;
          message = failure.message;
        } catch {
          // The status line is all there is.
        }
      }
      throw new ApiError(response.status, code, message);
    }
    if (type.includes('json')) return response.json();
    return response;
  }

  get(path, options) {
    return this.request('GET', path, options);
  }

  post(path, body, options = {}) {
    return this.request('POST', path, { ...options, body });
  }

  put(path, body, options = {}) {
    return this.request('PUT', path, { ...options, body });
  }

  delete(path, body, options = {}) {
    return this.request('DELETE', path, { ...options, body });
  }
}
