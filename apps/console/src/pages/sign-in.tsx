import { useState, type FormEvent } from 'react';
import { ApiError, session } from '../api.js';

export const SignIn = ({ notice, onSignedIn }: { notice: string | null; onSignedIn: () => void }) => {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await session.signIn(key);
      setKey('');
      onSignedIn();
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'That API key is not accepted.' : `Sign-in failed: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin">
      <h1>Call Console</h1>
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      {/* method=post: even a submit that bypasses the script never puts the key in a URL. */}
      <form method="post" onSubmit={(e) => void submit(e)} aria-label="Sign in">
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="apiKey" type="password" autoComplete="current-password" required value={key} onChange={(e) => setKey(e.target.value)} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
      </form>
      <p className="hint">The key is exchanged for a session cookie that scripts cannot read; it is never put in a URL.</p>
    </main>
  );
};
