import { useEffect, useState } from 'react';

/** Client-side routes under /console; the URL (path and query) is the whole state of a view, so it can be shared. */
export const BASE = '/console';

export const navigate = (to: string, replace = false): void => {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
};

export const useLocation = (): { path: string; search: URLSearchParams } => {
  const read = () => ({ path: location.pathname, search: new URLSearchParams(location.search) });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return loc;
};

/** A link that routes in the page, and still opens in a new tab with a modifier key. */
export const onLinkClick = (e: React.MouseEvent<HTMLAnchorElement>): void => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const href = e.currentTarget.getAttribute('href');
  if (!href || !href.startsWith(BASE)) return;
  e.preventDefault();
  navigate(href);
};

export const callHref = (callId: string, provider?: string, extra: Record<string, string> = {}) => {
  const q = new URLSearchParams({ ...(provider ? { provider } : {}), ...extra }).toString();
  return `${BASE}/calls/${encodeURIComponent(callId)}${q ? `?${q}` : ''}`;
};
