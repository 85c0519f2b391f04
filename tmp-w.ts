import { parentPort } from 'node:worker_threads';
import { EVENTS_CHANNEL } from '@lib/event-store';
import { callLegsProjection } from '@lib/projections';
class A { constructor(private readonly x: number) {} get() { return this.x; } }
parentPort!.postMessage({ ch: EVENTS_CHANNEL, a: new A(3).get(), p: callLegsProjection.name });
