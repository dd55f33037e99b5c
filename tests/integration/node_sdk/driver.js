// An HTTP service instrumented with the official X-Ray SDK for Node.js, used by node_sdk_test.py.
//
// The SDK is configured only as an application would configure it: AWS_XRAY_DAEMON_ADDRESS
// (tcp: and udp: of the xrayd under test), centralized sampling (the SDK's default), and its
// middleware (traceRequestResponseCycle, what the Express and Restify packages call). Its sampling
// code is not touched. The driver sends requests to its own loopback server in phases, waiting
// for the SDK's own log lines that say the rules and then the targets were fetched:
//   warm-up   one request before any rule is loaded (starts the SDK's pollers)
//   rules     100 requests decided by the rules fetched through xrayd's proxy
//   targets   20 requests decided by the targets fetched after the first statistics report
//   report    wait for the next report, so the second phase's statistics reach the service too
// It prints one JSON line per phase and, last, every UDP payload the process sent, in base64.
'use strict';

const dgram = require('dgram');
const http = require('http');

// Every UDP payload this process sends, recorded before Node sends it (the SDK's emitter calls
// send(buffer, offset, length, port, address, callback) on a dgram socket; the recording only
// copies the bytes). A send before the socket is bound is queued and replayed by Node through
// send() again with the bytes as a list: only the SDK's form is recorded, so none counts twice.
const sent = [];
let pendingSends = 0;
const originalSend = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function (...args) {
    const [msg, offset, length] = args;
    if (Buffer.isBuffer(msg) && typeof offset === 'number') {
        sent.push(Buffer.from(msg.subarray(offset, offset + length)).toString('base64'));
    }
    const last = args.length - 1;
    const callback = typeof args[last] === 'function' ? args.pop() : null;
    pendingSends++;
    return originalSend.call(this, ...args, (err, bytes) => {
        pendingSends--;
        if (callback) {
            callback(err, bytes);
        }
    });
};

const AWSXRay = require('aws-xray-sdk-core');

// The SDK's log, kept: the phases wait for its info lines and the test fails on its warnings.
const logLines = [];
const problems = [];
function record(level) {
    return (...args) => {
        const line = args.map(String).join(' ');
        logLines.push(line);
        if (level === 'warn' || level === 'error') {
            problems.push(`${level}: ${line}`);
        }
        process.stderr.write(`sdk ${level}: ${line}\n`);
    };
}
AWSXRay.setLogger({
    debug: () => {}, info: record('info'), warn: record('warn'), error: record('error'),
});
AWSXRay.middleware.setDefaultName('node-sdk-service');

function fail(message) {
    process.stderr.write(`driver: ${message}\n`);
    process.exit(1);
}

function countLog(text) {
    return logLines.filter((line) => line.includes(text)).length;
}

async function waitForLog(text, count, seconds) {
    const deadline = Date.now() + seconds * 1000;
    while (countLog(text) < count) {
        if (Date.now() > deadline) {
            fail(`no SDK log line "${text}" (#${count}) within ${seconds} s`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

function request(port, path) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path }, (res) => {
            let body = '';
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve(JSON.parse(body)));
            res.on('error', reject);
        });
        req.on('error', reject);
    });
}

async function phase(name, port, count) {
    let sampled = 0;
    for (let n = 0; n < count; n++) {
        const answer = await request(port, `/orders/${name}/${n}`);
        if (answer.sampled) {
            sampled++;
        }
    }
    // The rules as the SDK holds them after the phase (read only: name, rate, reservoir).
    const rules = AWSXRay.middleware.sampler.ruleCache.getRules().map((rule) => ({
        name: rule.getName(), rate: rule.getRate(),
    }));
    console.log(JSON.stringify({ phase: name, requests: count, sampled, rules }));
}

async function main() {
    const address = process.env.AWS_XRAY_DAEMON_ADDRESS || '';
    if (!/^tcp:127\.0\.0\.1:\d+ udp:127\.0\.0\.1:\d+$/.test(address)) {
        fail(`AWS_XRAY_DAEMON_ADDRESS must be "tcp:127.0.0.1:T udp:127.0.0.1:U", is "${address}"`);
    }
    const server = http.createServer((req, res) => {
        const segment = AWSXRay.middleware.traceRequestResponseCycle(req, res);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ sampled: !segment.notTraced }));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = server.address().port;

    const rulesLoaded = 'Successfully refreshed centralized sampling rule cache.';
    const targetsLoaded = 'Successfully reported rule statistics to get new sampling quota.';
    await phase('warm-up', port, 1);
    await waitForLog(rulesLoaded, 1, 15);
    await phase('rules', port, 100);
    await waitForLog(targetsLoaded, 1, 20);  // the target poller runs every 10 s
    await phase('targets', port, 20);
    await waitForLog(targetsLoaded, 2, 20);

    await new Promise((resolve) => server.close(resolve));
    const deadline = Date.now() + 5000;
    while (pendingSends > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (pendingSends > 0) {
        fail(`${pendingSends} UDP sends still pending after 5 s`);
    }
    console.log(JSON.stringify({ phase: 'done', problems, sent }));
    process.exit(0);
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));
