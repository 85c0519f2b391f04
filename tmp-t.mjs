import { Worker } from 'node:worker_threads';
const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(new URL('./tmp-w.ts', import.meta.url).href)}); })`;
const w = new Worker(boot, { eval: true });
w.on('message', (m) => { console.log('got', m); void w.terminate(); });
w.on('error', (e) => console.log('err', e));
