// The grpc-gateway JSON API: routes, request decoding, and the table of served handlers.
export { decodeBase64Std, decodeMessage, GatewayDecodeError } from './decode.ts';
export { type GatewayOptions, goJson, httpStatusOfCode, serveGateway } from './gateway.ts';
export { JsonStreamReader, JsonSyntaxError, parseJsonDocument } from './json.ts';
export { type AnyHandler, type HandlerWrapper, MethodTable } from './methods.ts';
export { GATEWAY_PREFIXES, GATEWAY_ROUTES, type GatewayRoute } from './routes.ts';
