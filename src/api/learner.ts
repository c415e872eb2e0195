/**
 * What a learner serves. A learner replicates the log without voting; etcd lets clients reach
 * it only for Status and serializable Range, its own possibly stale view. Every other call,
 * unary or streaming (watches, keep-alives, snapshots included), is refused with
 * `etcdserver: rpc not supported for learner` (UNAVAILABLE), so that a client moves on to
 * another endpoint. Once promoted, the member serves everything.
 *
 * The layer sits outside the metrics, as etcd's check comes before its gRPC metrics: refused
 * calls are not counted as handled.
 */
import { KVService, MaintenanceService, type RangeRequest } from '../proto/index.ts';
import { etcdError } from './errors.ts';
import type { AnyHandler, HandlerWrapper } from './gateway/index.ts';
import type { AnyMethodDescriptor } from './grpc/index.ts';

/** Whether the member is, as far as it has applied, a learner. */
export interface LearnerState {
  isLearner(): boolean;
}

export function learnerLayer(member: LearnerState): HandlerWrapper {
  return (desc: AnyMethodDescriptor, handler: AnyHandler): AnyHandler => {
    if (desc.path === MaintenanceService.Status.path) return handler;
    const h = handler as (req: unknown, call: unknown) => unknown;
    if (desc.path === KVService.Range.path) {
      return ((req: RangeRequest, call: unknown) => {
        if (!req.serializable && member.isLearner()) throw etcdError('NotSupportedForLearner');
        return h(req, call);
      }) as AnyHandler;
    }
    return ((req: unknown, call: unknown) => {
      if (member.isLearner()) throw etcdError('NotSupportedForLearner');
      return h(req, call);
    }) as AnyHandler;
  };
}
