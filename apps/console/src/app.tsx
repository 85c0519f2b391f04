import { lazy, Suspense, useEffect, useState } from 'react';
import { onSessionExpired, session } from './api.js';
import { BASE, navigate, onLinkClick, useLocation } from './router.js';
import { SignIn } from './pages/sign-in.js';
import { CallsPage } from './pages/calls.js';
import { CallPage } from './pages/call.js';

// Analytics (with uPlot) and Operations load on first use: the calls list and the call page, where support engineers
// land from links, do not parse them.
const AnalyticsPage = lazy(() => import('./pages/analytics.js').then((m) => ({ default: m.AnalyticsPage })));
const OperationsPage = lazy(() => import('./pages/operations.js').then((m) => ({ default: m.OperationsPage })));

type Auth = 'checking' | 'signed-in' | 'signed-out';

export const App = () => {
  const [auth, setAuth] = useState<Auth>('checking');
  const [notice, setNotice] = useState<string | null>(null);
  const { path, search } = useLocation();

  useEffect(() => {
    session.current().then((s) => setAuth(s ? 'signed-in' : 'signed-out'), () => setAuth('signed-out'));
    return onSessionExpired(() => {
      setNotice('Your session has expired. Sign in again.');
      setAuth('signed-out');
    });
  }, []);

  // The page waits for the session check: its requests made without a session would each count as a refused API
  // key against this address (and soon be rate-limited), so it does not start them optimistically.
  if (auth === 'checking') return <p className="loading" role="status">Loading…</p>;
  if (auth === 'signed-out') {
    return (
      <SignIn
        notice={notice}
        onSignedIn={() => {
          setNotice(null);
          setAuth('signed-in');
        }}
      />
    );
  }

  const signOut = async () => {
    await session.signOut();
    setNotice('You are signed out.');
    setAuth('signed-out');
  };

  const route = path.replace(/\/+$/, '').slice(BASE.length) || '/calls';
  const callMatch = /^\/calls\/([^/]+)$/.exec(route);
  let page;
  if (callMatch) page = <CallPage callId={decodeURIComponent(callMatch[1]!)} search={search} />;
  else if (route === '/calls') page = <CallsPage search={search} />;
  else if (route === '/analytics') page = <AnalyticsPage search={search} />;
  else if (route === '/operations') page = <OperationsPage />;
  else page = <p>Unknown page. <a href={`${BASE}/calls`} onClick={onLinkClick}>Go to calls</a></p>;

  const section = route.split('/')[1];
  return (
    <>
      <header className="top">
        <a className="brand" href={`${BASE}/calls`} onClick={onLinkClick}>
          Call Console
        </a>
        <nav aria-label="Sections">
          {(['calls', 'analytics', 'operations'] as const).map((s) => (
            <a key={s} href={`${BASE}/${s}`} onClick={onLinkClick} aria-current={section === s ? 'page' : undefined}>
              {s[0]!.toUpperCase() + s.slice(1)}
            </a>
          ))}
        </nav>
        <button type="button" className="signout" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main>
        <Suspense fallback={<p role="status">Loading…</p>}>{page}</Suspense>
      </main>
    </>
  );
};

export { navigate };
