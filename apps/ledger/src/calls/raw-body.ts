const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A stored body as JSON can carry it without changing a byte: the text itself when the bytes are valid UTF-8
 * (which is what every provider sends), else base64, flagged, so that the bytes can still be recovered exactly.
 */
export const encodeRawBody = (body: Buffer): { body: string; bodyEncoding: 'utf8' | 'base64' } => {
  try {
    return { body: utf8.decode(body), bodyEncoding: 'utf8' };
  } catch {
    return { body: body.toString('base64'), bodyEncoding: 'base64' };
  }
};
