/**
 * gRPC's standard health service (grpc.health.v1.Health), as etcd serves it: the server as a
 * whole (service "") is SERVING for as long as it answers; no other service is known. Check of
 * another service answers NOT_FOUND `unknown service`; Watch sends the status once (or
 * SERVICE_UNKNOWN) and then holds the stream, since the status never changes, until the client
 * cancels. Probes and load balancers that speak this protocol (grpc_health_probe, Envoy,
 * Kubernetes' gRPC probes) can check a member without knowing etcd's API.
 */
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthService,
} from '../proto/index.ts';
import { GrpcError, GrpcStatus } from './errors.ts';
import { type GrpcServer, type ServerWritableCall, untilCallEnds } from './grpc/index.ts';

/** The service name that stands for the whole server. */
const WHOLE_SERVER = '';

export function registerGrpcHealthService(grpc: GrpcServer): void {
  grpc.addMethod(HealthService.Check, (req: HealthCheckRequest): HealthCheckResponse => {
    if (req.service !== WHOLE_SERVER) throw new GrpcError(GrpcStatus.NOT_FOUND, 'unknown service');
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  });
  grpc.addMethod(
    HealthService.Watch,
    async (req: HealthCheckRequest, call: ServerWritableCall<HealthCheckResponse>): Promise<void> => {
      const status =
        req.service === WHOLE_SERVER
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
      call.write({ status });
      await untilCallEnds(call);
    },
  );
}
