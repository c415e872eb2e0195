/** Reading a node:http2 client stream's answer in tests. */
import type { ClientHttp2Stream } from 'node:http2';

/** The status of the response on `stream` and its body as text, once the stream ends. */
export function readAnswer(stream: ClientHttp2Stream): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let body = '';
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
  });
}
