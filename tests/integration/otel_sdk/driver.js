// Spans made by the OpenTelemetry JS SDK and sent by its own OTLP/HTTP exporters to the xrayd
// under test, used by otel_sdk_test.py. Usage: node driver.js http://127.0.0.1:PORT/v1/traces
//
// The SDK is configured as an application configures it, with nothing of it replaced: two
// tracer providers, each with its own resource (service.name and more) and a BatchSpanProcessor
// in front of one exporter: "proto" (@opentelemetry/exporter-trace-otlp-proto, gzip) and "json"
// (@opentelemetry/exporter-trace-otlp-http, uncompressed), so xrayd reads both encodings, with
// and without gzip. Each round makes seven spans per trace through both providers: every
// SpanKind, parent and child, every attribute type (string, boolean, int, double, arrays of
// each, an empty array, an array with a null), events with attributes, links (within the
// provider, to the other provider's spans, and with attributes), an error status with a message
// and a recorded exception, and a child of a remote parent with a trace state. A round ends
// with a forceFlush of both providers at once; a small maxExportBatchSize makes every flush
// several concurrent requests, and spans of several rounds and of both exporters reach xrayd
// close together, for its merging.
//
// A third span processor on each provider records every span as it ends (the ReadableSpan the
// exporter is given, read only). After both providers shut down it prints one JSON line:
//   spans     every ended span: ids, parent (and whether it is remote), trace state and flags,
//             name, kind (the API's name), times (ns, as decimal strings), attributes (raw JS
//             values), events, links, status, dropped counts, resource and scope, exporter
//   exports   each export call's exporter, span count and result code (0: success)
//   problems  what the SDK's diagnostic logger said at warn or error level
'use strict';

const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');
const ProtoExporter = require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter;
const JsonExporter = require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter;

const ROUNDS = 3;
const TRACES_PER_ROUND = 10;
const BATCH = 20;  // spans per export request; a round's flush is several requests at once

const problems = [];
api.diag.setLogger({
    error: (...args) => problems.push(`error: ${args.map(String).join(' ')}`),
    warn: (...args) => problems.push(`warn: ${args.map(String).join(' ')}`),
    info: () => {}, debug: () => {}, verbose: () => {},
}, api.DiagLogLevel.WARN);

function fail(message) {
    process.stderr.write(`driver: ${message}\n`);
    process.exit(1);
}

function nanos(hrTime) {
    return (BigInt(hrTime[0]) * 1000000000n + BigInt(hrTime[1])).toString();
}

function describe(span, exporter) {
    const ctx = span.spanContext();
    const parent = span.parentSpanContext;
    return {
        exporter,
        trace_id: ctx.traceId,
        span_id: ctx.spanId,
        trace_state: ctx.traceState ? ctx.traceState.serialize() : '',
        trace_flags: ctx.traceFlags,
        parent_span_id: parent ? parent.spanId : '',
        parent_is_remote: Boolean(parent && parent.isRemote),
        name: span.name,
        kind: api.SpanKind[span.kind],
        start_time_unix_nano: nanos(span.startTime),
        end_time_unix_nano: nanos(span.endTime),
        attributes: span.attributes,
        dropped_attributes_count: span.droppedAttributesCount,
        events: span.events.map((e) => ({
            name: e.name, time_unix_nano: nanos(e.time), attributes: e.attributes || {},
            dropped_attributes_count: e.droppedAttributesCount || 0,
        })),
        dropped_events_count: span.droppedEventsCount,
        links: span.links.map((l) => ({
            trace_id: l.context.traceId, span_id: l.context.spanId,
            trace_state: l.context.traceState ? l.context.traceState.serialize() : '',
            trace_flags: l.context.traceFlags, is_remote: Boolean(l.context.isRemote),
            attributes: l.attributes || {}, dropped_attributes_count: l.droppedAttributesCount || 0,
        })),
        dropped_links_count: span.droppedLinksCount,
        status: { code: api.SpanStatusCode[span.status.code], message: span.status.message || '' },
        resource: {
            attributes: span.resource.attributes, schema_url: span.resource.schemaUrl || '',
        },
        scope: {
            name: span.instrumentationScope.name, version: span.instrumentationScope.version || '',
            schema_url: span.instrumentationScope.schemaUrl || '',
        },
    };
}

const ended = [];
const exportCalls = [];

// The exporter as the SDK built it; this wrapper only notes each call's result.
function noting(name, exporter) {
    return {
        export(spans, done) {
            exporter.export(spans, (result) => {
                exportCalls.push({
                    exporter: name, spans: spans.length, code: result.code,
                    error: result.error ? String(result.error) : '',
                });
                done(result);
            });
        },
        forceFlush: () => exporter.forceFlush(),
        shutdown: () => exporter.shutdown(),
    };
}

function provider(name, exporter, attributes) {
    const recorder = {
        onStart() {},
        onEnd(span) { ended.push(describe(span, name)); },
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve(),
    };
    const batches = new BatchSpanProcessor(noting(name, exporter), {
        maxExportBatchSize: BATCH, maxQueueSize: 4096, scheduledDelayMillis: 60000,
        exportTimeoutMillis: 20000,
    });
    const resource = defaultResource().merge(resourceFromAttributes(attributes,
        { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' }));
    return new BasicTracerProvider({ resource, spanProcessors: [recorder, batches] });
}

// Every attribute type the API allows, with values that show a lossy encoding. None is an
// integer outside int64: the JSON exporter would write it as an invalid intValue.
function allTypes(round, n) {
    return {
        'http.request.method': 'GET',
        'url.path': `/orders/${round}/${n}`,
        'note.unicode': 'grüße ☃ 𝄞 "quoted" \\ back\nline',
        'note.empty': '',
        'flag.true': true,
        'flag.false': false,
        'count.zero': 0,
        'count.int': 42 + n,
        'count.negative': -7 - n,
        'count.large': 2 ** 40 + n,
        'count.max_safe': Number.MAX_SAFE_INTEGER,
        'ratio.double': 0.25 + n,
        'ratio.negative': -1.5e-7,
        'ratio.tiny': 5e-324,
        'list.strings': ['a', 'bé', ''],
        'list.bools': [true, false, true],
        'list.ints': [1, -2, 2 ** 35],
        'list.doubles': [0.5, -2.75, 1e-10],
        'list.empty': [],
        'list.with_null': ['x', null, 'z'],
    };
}

async function round(tracers, r, remoteParents) {
    for (const [name, tracer] of tracers) {
        const other = tracers.find(([n]) => n !== name)[1];
        for (let n = 0; n < TRACES_PER_ROUND; n++) {
            await tracer.startActiveSpan(`GET /orders/${n}`,
                { kind: api.SpanKind.SERVER, attributes: allTypes(r, n) }, async (root) => {
                    const check = tracer.startSpan('validate order',
                        { kind: api.SpanKind.INTERNAL });
                    check.addEvent('validated', { 'items': 3, 'ok': true, 'score': 0.5,
                        'tags': ['new', 'priority'] });
                    check.addEvent('no attributes');
                    check.end();

                    const query = tracer.startSpan('SELECT orders', {
                        kind: api.SpanKind.CLIENT,
                        attributes: { 'db.system': 'postgresql', 'db.rows': n, 'server.port': 443 },
                    });
                    query.setStatus({ code: api.SpanStatusCode.OK });
                    query.end();

                    const publish = tracer.startSpan('orders publish',
                        { kind: api.SpanKind.PRODUCER, attributes: { 'messaging.system': 'sqs' } });
                    publish.end();

                    const charge = tracer.startSpan('charge card', { kind: api.SpanKind.CLIENT });
                    charge.recordException(new Error(`card declined (${name} ${r}/${n})`));
                    charge.setStatus({ code: api.SpanStatusCode.ERROR,
                        message: `payment failed: card declined ${r}/${n}` });
                    charge.end();
                    root.end();

                    // A consumer in a trace of its own, linked to the producer and to a span
                    // that the other provider (the other exporter) makes.
                    const elsewhere = other.startSpan('audit', { root: true });
                    elsewhere.end();
                    const consume = tracer.startSpan('orders process', {
                        root: true, kind: api.SpanKind.CONSUMER,
                        links: [
                            { context: publish.spanContext(),
                                attributes: { 'messaging.operation': 'process', 'retry': 0 } },
                            { context: elsewhere.spanContext() },
                        ],
                    });
                    consume.end();

                    // A child of a remote parent that came with a trace state.
                    const remote = remoteParents[(r * TRACES_PER_ROUND + n) % remoteParents.length];
                    const child = tracer.startSpan('handle remote call',
                        { kind: api.SpanKind.SERVER },
                        api.trace.setSpanContext(api.ROOT_CONTEXT, remote));
                    child.addEvent('at a given time', { 'at': 'fixed' }, [1700000000, 123456789]);
                    child.end();
                });
        }
    }
}

async function main() {
    const url = process.argv[2] || '';
    if (!/^http:\/\/127\.0\.0\.1:\d+\/v1\/traces$/.test(url)) {
        fail(`usage: node driver.js http://127.0.0.1:PORT/v1/traces (got "${url}")`);
    }
    const providers = [
        ['proto', provider('proto', new ProtoExporter({ url, compression: 'gzip' }), {
            'service.name': 'otel-proto-service', 'service.version': '1.2.3',
            'deployment.environment.name': 'test', 'host.cpus': 2, 'host.is_container': false,
            'host.load': 0.75, 'service.tags': ['a', 'b'],
        })],
        ['json', provider('json', new JsonExporter({ url, compression: 'none' }), {
            'service.name': 'otel-json-service', 'service.namespace': 'xrayd-tests',
            'process.pid': process.pid, 'service.instance.id': 'instance-1',
        })],
    ];
    const tracers = providers.map(([name, p]) => [name, p.getTracer(`driver-${name}`, '0.1.0',
        { schemaUrl: 'https://opentelemetry.io/schemas/1.25.0' })]);
    const remoteParents = [
        { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174',
            traceFlags: api.TraceFlags.SAMPLED, isRemote: true,
            traceState: api.createTraceState('vendor=value,xray=1-5f84c7a1') },
        { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331',
            traceFlags: api.TraceFlags.SAMPLED, isRemote: true },
    ];
    // A failed export rejects the flush: noted, so that the test shows it with the rest.
    const noted = (what) => (err) => {
        problems.push(`${what}: ${err && err.message ? err.message : err}`);
    };
    for (let r = 0; r < ROUNDS; r++) {
        await round(tracers, r, remoteParents);
        await Promise.all(providers.map(([name, p]) => p.forceFlush()
            .catch(noted(`forceFlush ${name}`))));
    }
    await Promise.all(providers.map(([name, p]) => p.shutdown().catch(noted(`shutdown ${name}`))));
    console.log(JSON.stringify({ spans: ended, exports: exportCalls, problems }));
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
